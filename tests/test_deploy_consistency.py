"""The deployment agrees with the code: our own checks over the rendered objects and compose.

Schema validators cannot see that a Service selects no pod, that a probe asks for a route
the service does not have, or that a setting the code reads is set nowhere: each of those
deploys cleanly and fails only in the cluster. These tests read the rendered kustomization
(tests/deploy_render.py), docker-compose.yml, the Makefile and the services' own source.
"""

from __future__ import annotations

import base64
import importlib
import re
import sys
from pathlib import Path

import pytest
from deploy_render import ROOT, SERVICES, load_yaml, rendered_objects, run

from mp3common.settings import (
    DEV_RABBITMQ_URL,
    PLACEHOLDER,
    PUBLISHED_SECRETS,
    DevDefault,
    ServiceSettings,
)

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy

ENVIRON_READ = re.compile(r'environ(?:\.get\(|\[)\s*"([A-Z][A-Z0-9_]*)"')
ROUTE = re.compile(r'\.(?:get|post|put|patch|delete|route)\(\s*"(/[^"]*)"')
ENV_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


# --- reading the sources ----------------------------------------------------------------


def service_sources(service: str) -> list[Path]:
    return [p for p in (ROOT / service).rglob("*.py") if "tests" not in p.parts]


def names_settings_read(service: str) -> set[str]:
    """The variables the service's Settings class declares (one per field)."""
    if str(ROOT / service) not in sys.path:
        sys.path.append(str(ROOT / service))  # as the service's own tests and image have it
    module = importlib.import_module(f"{service}_service.settings")
    return set(module.Settings.env_names().values())


def names_read_anywhere(service: str) -> set[str]:
    """Its settings, plus what gunicorn's config and the shared package read directly."""
    files = service_sources(service) + sorted((ROOT / "common" / "mp3common").glob("*.py"))
    names = names_settings_read(service) | set(ServiceSettings.env_names().values())
    for path in files:
        names |= set(ENVIRON_READ.findall(path.read_text()))
    return names


def routes(service: str) -> set[str]:
    files = service_sources(service) + [ROOT / "common" / "mp3common" / "http_metrics.py"]
    return {route for path in files for route in ROUTE.findall(path.read_text())}


def makefile_images() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    repo = re.search(r"^IMAGE_REPO := (\S+)$", text, re.M).group(1)
    tag = re.search(r"^IMAGE_TAG := (\S+)$", text, re.M).group(1)
    return {service: f"{repo}/{service}:{tag}" for service in SERVICES}


# --- reading the rendered objects ---------------------------------------------------------


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return rendered_objects()


@pytest.fixture(scope="module")
def by_kind(objects) -> dict[str, dict[str, dict]]:
    index: dict[str, dict[str, dict]] = {}
    for obj in objects:
        index.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    return index


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml((ROOT / "docker-compose.yml").read_text())[0]


def workloads(by_kind) -> dict[str, dict]:
    return {name: obj for kind in WORKLOAD_KINDS for name, obj in by_kind.get(kind, {}).items()}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def the_container(by_kind, service: str) -> dict:
    workload = by_kind["Deployment"].get(service)
    assert workload is not None, f"no Deployment {service}"
    (container,) = [c for c in pod_spec(workload)["containers"] if c["name"] == service]
    return container


def container_env(by_kind, container: dict) -> dict[str, str | None]:
    """Each variable the container gets, with its literal value (None: from a secret)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(by_kind["ConfigMap"][source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def container_ports(container: dict) -> set:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_setting_the_service_reads_is_set_by_its_manifest(by_kind, service):
    wanted = names_settings_read(service)
    env = container_env(by_kind, the_container(by_kind, service))
    missing = wanted - set(env)
    assert not missing, f"{service} reads {sorted(missing)}, its manifests set none of them"


@pytest.mark.parametrize("service", SERVICES)
def test_each_variable_the_manifest_sets_is_read(by_kind, service):
    """A misspelt name is set and silently ignored: only names the code reads are allowed."""
    env = container_env(by_kind, the_container(by_kind, service))
    referenced = {name for value in env.values() for name in ENV_REFERENCE.findall(value or "")}
    unread = set(env) - names_read_anywhere(service) - referenced
    assert not unread, f"{service}'s manifests set {sorted(unread)}, which nothing reads"


def test_every_env_reference_resolves(by_kind):
    """secretKeyRef and configMapKeyRef keys exist; $(NAME) names an earlier variable."""
    problems = []
    for name, workload in workloads(by_kind).items():
        for container in pod_spec(workload)["containers"]:
            defined: set[str] = set()
            for source in container.get("envFrom", []):
                config = by_kind["ConfigMap"].get(source["configMapRef"]["name"])
                if config is None:
                    problems.append(f"{name}: no ConfigMap {source['configMapRef']['name']}")
                else:
                    defined |= set(config["data"])
            for item in container.get("env", []):
                for ref, kind, field in (
                    ("secretKeyRef", "Secret", "data"),
                    ("configMapKeyRef", "ConfigMap", "data"),
                ):
                    ref_value = item.get("valueFrom", {}).get(ref)
                    if ref_value is None:
                        continue
                    target = by_kind.get(kind, {}).get(ref_value["name"])
                    if target is None or ref_value["key"] not in (target.get(field) or {}):
                        problems.append(f"{name}: {item['name']} → {kind} {ref_value}")
                for used in ENV_REFERENCE.findall(item.get("value", "")):
                    if used not in defined:
                        problems.append(f"{name}: {item['name']} uses $({used}) before it is set")
                defined.add(item["name"])
    assert not problems, "\n".join(problems)


# --- wiring -----------------------------------------------------------------------------


def test_each_service_selects_pods_and_targets_their_ports(by_kind):
    problems = []
    for name, service in by_kind["Service"].items():
        selector = service["spec"]["selector"]
        pods = [
            pod_spec(w)
            for w in workloads(by_kind).values()
            if selects(selector, w["spec"]["template"]["metadata"]["labels"])
        ]
        if not pods:
            problems.append(f"Service {name} selects no pod ({selector})")
            continue
        ports = set().union(*(container_ports(c) for pod in pods for c in pod["containers"]))
        for port in service["spec"]["ports"]:
            if port.get("targetPort", port["port"]) not in ports:
                problems.append(f"Service {name}: targetPort {port.get('targetPort')} not served")
    assert not problems, "\n".join(problems)


def test_the_ingresses_route_the_readme_hosts_to_existing_backends(by_kind):
    routed = {}
    for ingress in by_kind["Ingress"].values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = by_kind["Service"].get(backend["name"])
                assert service, f"ingress backend {backend['name']} does not exist"
                assert backend["port"]["number"] in {p["port"] for p in service["spec"]["ports"]}
                routed[rule["host"]] = (backend["name"], backend["port"]["number"])
    # rabbitmq-manager.com is opt-in (deploy/components/rabbitmq-ui, tests/test_deploy_tls.py).
    assert routed == {"mp3converter.com": ("gateway", 8080)}


def _bytes(size: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()
    return int(number) * units[unit]


def test_the_ingress_body_limit_is_the_gateway_upload_limit(by_kind, compose):
    """The reference's users hit nginx's 413 long before the gateway's own limit."""
    ingress = by_kind["Ingress"]["gateway-ingress"]
    limit = _bytes(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    )
    gateway_env = container_env(by_kind, the_container(by_kind, "gateway"))
    assert limit == int(gateway_env["MAX_UPLOAD_BYTES"])
    assert limit == int(compose["services"]["gateway"]["environment"]["MAX_UPLOAD_BYTES"])


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ask_what_the_service_really_answers(by_kind, service):
    container = the_container(by_kind, service)
    env = container_env(by_kind, container)
    for kind in ("readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        assert probe, f"{service} has no {kind}"
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] in routes(service), f"{service} {kind}: no route"
            assert probe["httpGet"]["port"] in container_ports(container)
        else:
            command = " ".join(probe["exec"]["command"])
            # The consumers' liveness: the heartbeat file mp3common.amqp.Consumer touches.
            assert "HEARTBEAT_FILE" in command
            assert env.get("HEARTBEAT_FILE"), f"{service} sets no HEARTBEAT_FILE"
            assert "HEARTBEAT_FILE" in names_settings_read(service)


@pytest.mark.parametrize("service", SERVICES)
def test_images_are_the_ones_the_makefile_builds(by_kind, compose, service):
    image = makefile_images()[service]
    assert the_container(by_kind, service)["image"] == image
    assert compose["services"][service]["image"] == image
    assert compose["services"][service]["build"]["dockerfile"] == f"{service}/Dockerfile"
    exposed = {
        int(port)
        for line in (ROOT / service / "Dockerfile").read_text().splitlines()
        if line.startswith("EXPOSE ")
        for port in line.split()[1:]
    }
    declared = {p["containerPort"] for p in the_container(by_kind, service).get("ports", [])}
    assert declared <= exposed, f"{service}: the image exposes {exposed}, the pod uses {declared}"


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_scraped_where_they_are_served(by_kind, service):
    workload = by_kind["Deployment"][service]
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    container = the_container(by_kind, service)
    if "METRICS_PORT" not in names_settings_read(service):
        assert "prometheus.io/scrape" not in annotations, f"{service} serves no metrics"
        return
    port = container_env(by_kind, container)["METRICS_PORT"]
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == port
    assert {"name": "metrics", "containerPort": int(port)} in container["ports"]


# --- hardening --------------------------------------------------------------------------


def test_every_pod_is_locked_down(by_kind):
    problems = []
    ours = set(makefile_images().values())
    for name, workload in workloads(by_kind).items():
        pod = pod_spec(workload)
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            context = c.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}/{c['name']}: readOnlyRootFilesystem")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}/{c['name']}: capabilities.drop [ALL]")
            for bound in ("requests", "limits"):
                if set(c.get("resources", {}).get(bound, {})) < {"cpu", "memory"}:
                    problems.append(f"{name}/{c['name']}: {bound}")
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
                problems.append(f"{name}/{c['name']}: no emptyDir for /tmp")
            if c["image"] in ours and pod["securityContext"].get("runAsUser", 0) < 10000:
                problems.append(f"{name}: our images run as a UID above 10000")
    assert not problems, "\n".join(problems)


def _peers(rule: dict) -> set[str]:
    if not rule.get("from"):
        return {"anyone"}
    peers = set()
    for peer in rule["from"]:
        if "podSelector" in peer and "namespaceSelector" not in peer:
            peers.add(f"pod:{peer['podSelector']['matchLabels']['app']}")
        elif "namespaceSelector" in peer:
            labels = peer["namespaceSelector"]["matchLabels"]
            peers.add(f"ns:{labels.get('kubernetes.io/metadata.name', sorted(labels.items()))}")
    return peers


SCRAPERS = "ns:[('mp3converter.com/scrape-metrics', 'true')]"


@pytest.mark.parametrize(
    ("app", "port", "allowed"),
    [
        ("auth", 5000, {"pod:gateway"}),
        ("mysql", 3306, {"pod:auth"}),
        # The notification service records each sent mail on its job, so it reads jobs too.
        ("mongodb", 27017, {"pod:gateway", "pod:converter", "pod:notification"}),
        ("rabbitmq", 5672, {"pod:gateway", "pod:converter", "pod:notification"}),
        # The management UI: nobody, unless deploy/components/rabbitmq-ui is applied.
        ("rabbitmq", 15672, set()),
        ("gateway", 8080, {"ns:ingress-nginx"}),
        # The consumers take no traffic; only scrapers reach their metrics port.
        ("converter", 9100, {SCRAPERS}),
        ("notification", 9100, {SCRAPERS}),
        ("auth", 9100, {SCRAPERS}),
        ("gateway", 9100, {SCRAPERS}),
    ],
)
def test_network_policies_admit_only_the_expected_clients(by_kind, app, port, allowed):
    policies = by_kind["NetworkPolicy"].values()
    default_deny = [
        p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert default_deny, "no default-deny ingress policy"
    admitted: set[str] = set()
    for policy in policies:
        if not selects(policy["spec"]["podSelector"].get("matchLabels", {}), {"app": app}):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if not ports or port in ports:
                admitted |= _peers(rule)
    assert admitted == allowed


def test_http_services_keep_a_pod_through_disruptions_and_the_converter_scales(by_kind):
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app"]: b
        for b in by_kind["PodDisruptionBudget"].values()
    }
    for app in ("auth", "gateway"):
        assert budgets[app]["spec"]["minAvailable"] < by_kind["Deployment"][app]["spec"]["replicas"]
    (hpa,) = by_kind["HorizontalPodAutoscaler"].values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "converter")
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


# --- secrets and first-start data ---------------------------------------------------------


def test_committed_secret_files_hold_placeholders_only():
    files = sorted(ROOT.glob("*/manifests/*secret*.yaml"))
    assert len(files) >= 6
    for path in files:
        for doc in load_yaml(path.read_text()):
            values = decoded(doc)
            assert values, f"{path} has no data"
            assert set(values.values()) == {PLACEHOLDER}, f"{path} holds a real value"
    assert run("git", "check-ignore", "-q", "k8s-secrets.env").returncode == 0


def test_rendered_secrets_are_filled_in_and_their_source_stays_out(by_kind):
    assert "generated-secrets" not in by_kind["Secret"]
    for name, secret in by_kind["Secret"].items():
        for key, value in decoded(secret).items():
            assert PLACEHOLDER not in value, f"{name}.{key} was not filled in"
            if key != "GMAIL_PASSWORD":  # the user's own, empty until they set it
                assert len(value) >= 32, f"{name}.{key} is not a generated secret"


def test_the_databases_start_with_the_schema_and_accounts_in_the_repository(by_kind, compose):
    configs = {name.rsplit("-", 1)[0]: obj for name, obj in by_kind["ConfigMap"].items()}
    assert configs["mysql-initdb"]["data"]["01-schema.sql"] == (ROOT / "auth/init.sql").read_text()
    user_script = (ROOT / "auth/manifests/mysql-auth-user.sh").read_text()
    assert configs["mysql-initdb"]["data"]["02-auth-user.sh"] == user_script
    mongo_script = (ROOT / "gateway/manifests/mongodb-init.js").read_text()
    assert configs["mongodb-initdb"]["data"]["mongodb-init.js"] == mongo_script
    mounts = {
        volume.split(":")[0]
        for service in ("mysql", "mongodb")
        for volume in compose["services"][service]["volumes"]
    }
    assert {
        "./auth/init.sql",
        "./auth/manifests/mysql-auth-user.sh",
        "./gateway/manifests/mongodb-init.js",
    } <= mounts


# --- docker compose -----------------------------------------------------------------------

SHARED_VALUES = (
    "VIDEO_QUEUE",
    "MP3_QUEUE",
    "MONGODB_DB",
    "MYSQL_DB",
    "MYSQL_USER",
    "MAX_UPLOAD_BYTES",
    "METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "HEARTBEAT_FILE",
    "CONVERTER_WORK_DIR",
    "OUTPUT_RETENTION_SECONDS",
    "FAILED_VIDEO_RETENTION_SECONDS",
)


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_the_same_variables_as_the_manifests(by_kind, compose, service):
    read = names_read_anywhere(service)
    manifest = container_env(by_kind, the_container(by_kind, service))
    composed = compose["services"][service]["environment"]
    assert set(composed) & read == set(manifest) & read
    for name in SHARED_VALUES:
        if name in manifest and name in composed:
            assert str(composed[name]) == manifest[name], name


def test_compose_runs_the_same_stores_as_the_cluster(by_kind, compose):
    for name in ("mysql", "mongodb", "rabbitmq"):
        (container,) = pod_spec(by_kind["StatefulSet"][name])["containers"]
        assert compose["services"][name]["image"] == container["image"]
    assert "127.0.0.1:8080:8080" in compose["services"]["gateway"]["ports"]


# --- published secrets ------------------------------------------------------------------

COMPOSE_DEFAULT = re.compile(r"\$\{([A-Z0-9_]*(?:PASSWORD|SECRET)[A-Z0-9_]*):-([^}]*)\}")


def test_every_secret_the_repository_publishes_is_refused_in_production():
    """docker-compose.yml's default secrets and the services' development secrets are
    public: each must be in PUBLISHED_SECRETS, which production refuses."""
    published = {
        f"docker-compose.yml {name}": value
        for name, value in COMPOSE_DEFAULT.findall((ROOT / "docker-compose.yml").read_text())
        if value
    }
    for service in SERVICES:
        names_settings_read(service)  # puts the service on sys.path
        settings = importlib.import_module(f"{service}_service.settings").Settings
        for name, field in settings.model_fields.items():
            for mark in field.metadata:
                if isinstance(mark, DevDefault) and mark.secret and mark.value:
                    published[f"{service} {name}"] = mark.value
    assert published, "found no published secret: the scan is broken"
    unlisted = {where: value for where, value in published.items()
                if value not in PUBLISHED_SECRETS and value != DEV_RABBITMQ_URL}  # fmt: skip
    assert not unlisted, f"add these to mp3common.settings.PUBLISHED_SECRETS: {unlisted}"
