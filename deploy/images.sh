#!/usr/bin/env bash
# The four service images, built from the repository's own Dockerfiles.
#
#   deploy/images.sh build [SERVICE...]   build them (all four by default), print a table
#   deploy/images.sh stage SERVICE DIR    write SERVICE's build context into DIR
#   deploy/images.sh engine               print the container engine in use (docker|podman)
#   deploy/images.sh base                 make sure the Dockerfiles' base image is present
#
# The engine is docker when a Docker daemon answers, else podman (installed with apt when
# missing, like `make run` installs what it needs); CONTAINER_ENGINE=docker|podman forces
# one. podman reads deploy/podman/containers.conf.
#
# No registry: where the Dockerfiles' base image (python:3.11-slim-bookworm) can neither be
# found locally nor pulled, a STAND-IN with the same name is made offline from Debian's
# packages (debootstrap bookworm + Debian's Python 3.11.2). It is not the official image:
# it has Debian's python3 in /usr/bin where the official one has CPython in /usr/local.
# Where a registry is reachable the same command uses the real base. `podman image inspect
# python:3.11-slim-bookworm` shows which one is here (the stand-in has a label saying so).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES=(auth gateway converter notification)
IMAGE_REPO=${IMAGE_REPO:-mp3converter}
IMAGE_TAG=${IMAGE_TAG:-0.1.0}
BUILD_DIR="$ROOT/var/image-build"
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STAND_IN_LABEL=org.mp3converter.stand-in-base
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}

say() { printf '==> %s\n' "$*"; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }
# shellcheck source=dev/install.sh
. "$ROOT/dev/install.sh"

# --- the engine ------------------------------------------------------------------------

engine() {
    case "${CONTAINER_ENGINE:-}" in
        docker|podman) echo "$CONTAINER_ENGINE"; return ;;
        '') ;;
        *) die "CONTAINER_ENGINE must be docker or podman, not '$CONTAINER_ENGINE'" ;;
    esac
    if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
        echo docker
    else
        echo podman
    fi
}

ensure_engine() { # ENGINE
    [ "$1" = podman ] || return 0
    # runc: crun cannot run on these hosts' hybrid cgroups; slirp4netns: a network of its
    # own for each container in the tests; catatonit: kube play's pods; debootstrap: the
    # stand-in base; iproute2: network namespaces for kube play.
    apt_install_missing podman buildah runc slirp4netns catatonit uidmap debootstrap iproute2
}

# --- the base image --------------------------------------------------------------------

base_image() { # the one FROM every Dockerfile names (they must agree)
    local names
    names=$(for s in "${SERVICES[@]}"; do awk 'toupper($1) == "FROM" {print $2}' "$ROOT/$s/Dockerfile"; done | sort -u)
    [ "$(wc -l <<<"$names")" -eq 1 ] || die "the Dockerfiles use different bases: $names"
    echo "$names"
}

fully_qualified() { # python:3.11-slim-bookworm -> docker.io/library/python:3.11-slim-bookworm
    case "$1" in
        */*/*|*.*/*) echo "$1" ;;
        */*) echo "docker.io/$1" ;;
        *) echo "docker.io/library/$1" ;;
    esac
}

ensure_base() { # ENGINE: docker pulls its base itself; podman may need a stand-in
    local base
    base=$(fully_qualified "$(base_image)")
    [ "$1" = podman ] || return 0
    if podman image exists "$base"; then
        if [ -z "$(podman image inspect --format "{{index .Labels \"$STAND_IN_LABEL\"}}" "$base")" ]; then
            say "base: $base is present"
            return
        fi
        # The stand-in made earlier: the real one replaces it once a registry answers.
        if timeout 120 podman pull -q "$base" >/dev/null 2>&1; then
            say "base: pulled the official $base (it replaces the stand-in)"
        else
            say "base: $base is the offline stand-in (Debian's Python 3.11), made earlier"
        fi
        return
    fi
    say "base: pulling $base"
    if timeout 120 podman pull -q "$base" >/dev/null 2>&1; then return; fi
    say "base: no registry answers; making a stand-in $base from Debian bookworm (about a minute)"
    make_stand_in "$base"
}

make_stand_in() { # NAME: debootstrap a minimal bookworm with Python 3.11 and import it
    local rootfs="$BUILD_DIR/stand-in-rootfs"
    as_root rm -rf "$rootfs"
    mkdir -p "$BUILD_DIR"
    # What the official image gives the Dockerfiles: python (and python -m venv with pip),
    # the C headers to build wheels (mysqlclient), CA certificates, apt for more.
    as_root debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,libpython3.11-dev,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR" >"$BUILD_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $BUILD_DIR/debootstrap.log"
    as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    as_root tar -C "$rootfs" -c . | podman import \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL $STAND_IN_LABEL=\"debootstrap bookworm, Debian's python3 3.11.2; made offline by deploy/images.sh, not the official image\"" \
        --change 'CMD ["python3"]' \
        - "$1" >/dev/null
    as_root rm -rf "$rootfs"
}

# --- building --------------------------------------------------------------------------

stage() { # SERVICE DIR: what SERVICE/Dockerfile copies, and nothing else (no tests, no venvs)
    local service=$1 dir=$2
    [ -f "$ROOT/$service/Dockerfile" ] || die "no $service/Dockerfile"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
        --exclude=tests --exclude=common/testing -cf - constraints.txt common "$service") \
        | tar -xf - -C "$dir"
}

pip_ca_args() { # podman: the host's pip CA bundle, mounted while building, never stored
    local ca
    ca=$(pip3 config get global.cert 2>/dev/null || true)
    ca=${PIP_CERT:-$ca}
    [ -n "$ca" ] && [ -f "$ca" ] || return 0
    printf '[global]\ncert = /run/host-ca.crt\n' >"$BUILD_DIR/pip.conf"
    printf '%s\n' -v "$ca:/run/host-ca.crt:ro" -v "$BUILD_DIR/pip.conf:/etc/pip.conf:ro"
}

cmd_build() {
    local engine services=("$@") service started seconds size
    [ ${#services[@]} -gt 0 ] || services=("${SERVICES[@]}")
    engine=$(engine)
    ensure_engine "$engine"
    ensure_base "$engine"
    mkdir -p "$BUILD_DIR"
    local extra=()
    if [ "$engine" = podman ]; then
        mapfile -t extra < <(pip_ca_args)
        # docker's image format keeps the HEALTHCHECK; the base is local (pulled or made).
        extra+=(--format docker --pull=never)
    fi
    local report=()
    for service in "${services[@]}"; do
        stage "$service" "$BUILD_DIR/$service"
        say "$engine: building $IMAGE_REPO/$service:$IMAGE_TAG"
        started=$SECONDS
        "$engine" build "${extra[@]}" -f "$BUILD_DIR/$service/$service/Dockerfile" \
            -t "$IMAGE_REPO/$service:$IMAGE_TAG" "$BUILD_DIR/$service" \
            >"$BUILD_DIR/$service.log" 2>&1 \
            || { tail -n 30 "$BUILD_DIR/$service.log" >&2; die "$service did not build; see $BUILD_DIR/$service.log"; }
        seconds=$((SECONDS - started))
        size=$("$engine" image inspect --format '{{.Size}}' "$IMAGE_REPO/$service:$IMAGE_TAG")
        report+=("$(printf '%-14s %5d s %8d MB' "$service" "$seconds" $((size / 1000000)))")
    done
    printf '%-14s %7s %11s\n' image build size
    printf '%s\n' "${report[@]}"
    # Each change leaves the previous images and builder stages behind, untagged. The
    # newest day's stay as the layer cache; older ones go.
    "$engine" image prune --force --filter until=24h >/dev/null
}

cd "$ROOT"
case "${1:-}" in
    build) shift; cmd_build "$@" ;;
    stage) [ $# -eq 3 ] || die "usage: deploy/images.sh stage SERVICE DIR"; stage "$2" "$3" ;;
    engine) engine ;;
    base) e=$(engine); ensure_engine "$e"; ensure_base "$e" ;;
    *) die "usage: deploy/images.sh build [SERVICE...] | stage SERVICE DIR | engine | base" ;;
esac
