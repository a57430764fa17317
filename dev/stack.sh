#!/usr/bin/env bash
# The whole mp3converter system on one machine, for development and tests: what must be
# set up around the processes. supervisord (dev/supervisord.conf) runs the processes.
#
#   dev/stack.sh deps     install the apt packages that are missing (idempotent)
#   dev/stack.sh up       start what is not running, reuse what is, print how to try it
#   dev/stack.sh stores   only the stores and their accounts; stop the services (for images)
#   dev/stack.sh down     stop exactly what `up` started
#   dev/stack.sh status   what runs, and who started it
#
# MariaDB and RabbitMQ already answering on their standard ports are reused (and then
# never stopped by `down`); otherwise they are installed with apt and started. Then the
# settings (var/dev.env), the database and the accounts; then supervisord, which runs the
# MongoDB stand-in (unless MONGODB_URI is set), a local SMTP sink that keeps every message
# in var/mail (see `make mail`), and the services, each logging to var/log/NAME.log.
#
# `up` again keeps what runs, with three exceptions. A file of the services' code (auth/,
# gateway/, converter/, notification/, common/) newer than their last start, after an edit
# or a `git pull`: the services are restarted. dev/supervisord.conf changed: supervisord
# applies it (`supervisorctl update`). The settings changed (var/dev.env, CONVERTERS,
# MONGODB_URI, the stand-in's launcher): supervisord and everything it runs restart.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR="$ROOT/var"
RUN="$VAR/run"
LOGS="$VAR/log"
ENV_FILE="$VAR/dev.env"
VENV="$ROOT/.venv"
MONGO_VENV="$ROOT/.venv-mongo"
CONF="$ROOT/dev/supervisord.conf"
# dev/supervisord.conf reads these from the environment too.
export SMTP_SINK_PORT=${SMTP_SINK_PORT:-1025}
export MONGO_PORT=${MONGO_PORT:-27017}
export CONVERTERS=${CONVERTERS:-2}
SEED_EMAIL="assylbek@email.com"
SEED_PASSWORD="Admin123"

say() { printf '==> %s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }
# shellcheck source=dev/install.sh
. "$ROOT/dev/install.sh"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # PORT SECONDS WHAT
    local deadline=$((SECONDS + $2))
    until port_open "$1"; do
        [ $SECONDS -lt $deadline ] || die "$3 did not open port $1 within $2 s (see $LOGS)"
        sleep 0.5
    done
}

ctl() { "$VENV/bin/supervisorctl" -c "$CONF" "$@"; }

supervised() { [ -x "$VENV/bin/supervisorctl" ] && ctl pid >/dev/null 2>&1; }

state() { ctl status "$1" 2>/dev/null | awk '{print $2}' || true; } # PROGRAM: RUNNING, STOPPED, …

cmd_deps() {
    # Build dependencies of mysqlclient, and the stores only when none already answers.
    local pkgs=(libmariadb-dev pkg-config gcc python3-dev python3-venv curl)
    port_open 3306 || pkgs+=(mariadb-server)
    port_open 5672 || pkgs+=(rabbitmq-server)
    apt_install_missing "${pkgs[@]}"
}

# --- the stores ------------------------------------------------------------------------

start_mariadb() {
    if port_open 3306; then say "MariaDB: reusing the one on 127.0.0.1:3306"; return; fi
    say "MariaDB: starting"
    as_root service mariadb start >/dev/null 2>&1 \
        || as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306 60 MariaDB
    touch "$RUN/started-mariadb"
}

start_rabbitmq() {
    if port_open 5672; then
        say "RabbitMQ: reusing the one on 127.0.0.1:5672"
    else
        say "RabbitMQ: starting"
        as_root service rabbitmq-server start >/dev/null 2>&1 \
            || as_root rabbitmq-server -detached
        wait_port 5672 120 RabbitMQ
        touch "$RUN/started-rabbitmq"
    fi
    if ! port_open 15672; then
        if command -v rabbitmq-plugins >/dev/null; then
            say "RabbitMQ: enabling the management UI"
            as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
            wait_port 15672 60 "RabbitMQ management"
        else
            say "RabbitMQ: management UI not on 15672 and rabbitmq-plugins not here; skipped"
        fi
    fi
}

ensure_rabbitmq_accounts() { # each service's account, with the cluster's rights
    local api=http://127.0.0.1:15672/api
    port_open 15672 || die "RabbitMQ: no management API on 15672; cannot make the services' accounts"
    # The cluster's own table (rabbit/manifests/rabbitmq-accounts.sh), through the
    # management API as guest (the broker may be another machine's or a container's).
    RABBITMQ_API=$api RABBITMQ_API_CREDENTIALS=guest:guest rabbit/manifests/rabbitmq-accounts.sh >/dev/null \
        || die "RabbitMQ: cannot make the services' accounts through $api"
    # The one account every service shared before issue 15.
    curl -sS -o /dev/null -u guest:guest -X DELETE "$api/users/mp3converter" || true
    # Queues made before the dead letters had an exchange of their own (issue 15) are
    # moved into queues declared as the services now declare them, with the services
    # stopped meanwhile (they would declare them back the old way).
    local queue
    for queue in "$VIDEO_QUEUE" "$MP3_QUEUE"; do
        as_declared "$queue" && continue
        say "RabbitMQ: $queue was declared by an older version; migrating it (mp3common.migrate_queue)"
        if supervised; then ctl stop 'services:*' >/dev/null || true; fi
        RABBITMQ_URL=$DEV_RABBITMQ_URL "$VENV/bin/python" -m mp3common.migrate_queue "$queue" \
            >/dev/null 2>"$LOGS/migrate-$queue.log" \
            || die "RabbitMQ: could not bring $queue up to date; see var/log/migrate-$queue.log"
    done
}

as_declared() { # QUEUE: it and its dead-letter queue exist as the services declare them
    RABBITMQ_URL=$DEV_RABBITMQ_URL "$VENV/bin/python" - "$1" >/dev/null 2>&1 <<'PY'
import os, sys
import pika
from mp3common.amqp import QueueMismatch, declare_queue
connection = pika.BlockingConnection(pika.URLParameters(os.environ["RABBITMQ_URL"]))
try:
    declare_queue(connection.channel(), sys.argv[1])
except QueueMismatch:
    sys.exit(1)
PY
}

# --- settings and database -------------------------------------------------------------

random_secret() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }

write_env_file() {
    umask 077
    if [ ! -f "$ENV_FILE" ]; then
        say "writing $ENV_FILE (development settings, fresh random secrets)"
        cat >"$ENV_FILE" <<EOF
# Development settings made by dev/stack.sh; the secrets are random and local to this
# checkout. Never used in production (APP_ENV=production refuses the dev defaults).
APP_ENV=development
MYSQL_HOST=127.0.0.1
MYSQL_PORT=3306
MYSQL_USER=mp3auth
MYSQL_PASSWORD=$(random_secret)
MYSQL_DB=mp3converter_auth
JWT_SECRET=$(random_secret)
TEST_MYSQL_USER=mp3test
TEST_MYSQL_PASSWORD=$(random_secret)
AUTH_SVC_ADDRESS=127.0.0.1:5000
MONGODB_URI=mongodb://127.0.0.1:$MONGO_PORT
RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/%2F
RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:15672
VIDEO_QUEUE=video
MP3_QUEUE=mp3
SMTP_HOST=127.0.0.1
SMTP_PORT=$SMTP_SINK_PORT
SMTP_SECURITY=none
GMAIL_ADDRESS=mp3converter@localhost
GMAIL_PASSWORD=
MAIL_DIR=$VAR/mail
EOF
    fi
    # Each service's own accounts, the ones the Kubernetes manifests name, made in the dev
    # stores too (the MongoDB stand-in enforces each one's role, RabbitMQ its rights): the
    # services run with them here and `make image-test` runs the images with them. Added to
    # an older dev.env that lacks them.
    # The gateway's key for naming accounts in its logs (HMAC), as k8s-secrets.env has one.
    ensure_env LOG_ACCOUNT_KEY "$(random_secret)"
    local service
    for service in GATEWAY CONVERTER NOTIFICATION; do
        ensure_env "MONGODB_${service}_PASSWORD" "$(random_secret)"
        ensure_env "RABBITMQ_${service}_PASSWORD" "$(random_secret)"
    done
}

ensure_env() { # NAME VALUE: add NAME=VALUE to the env file unless NAME is there
    grep -q "^$1=" "$ENV_FILE" || printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"
}

load_env() {
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
    # The MONGODB_URI of var/dev.env (exported again by `make test`) is the stand-in's.
    if [ "${USER_MONGODB_URI:-}" = "$MONGODB_URI" ]; then USER_MONGODB_URI=; fi
    if [ -n "${USER_MONGODB_URI:-}" ]; then MONGODB_URI=$USER_MONGODB_URI; fi
    # var/dev.env's RABBITMQ_URL and MONGODB_URI (guest, no account) are the tests' own;
    # each service gets its own account's, as in the cluster (dev/supervisord.conf).
    DEV_RABBITMQ_URL=$RABBITMQ_URL
    local service upper
    for service in gateway converter notification; do
        upper=${service^^}
        local rabbit_password="RABBITMQ_${upper}_PASSWORD" mongo_password="MONGODB_${upper}_PASSWORD"
        export "${upper}_RABBITMQ_URL=amqp://$service:${!rabbit_password}@127.0.0.1:5672/%2F"
        if [ -n "${USER_MONGODB_URI:-}" ]; then
            export "${upper}_MONGODB_URI=$USER_MONGODB_URI"
        else
            export "${upper}_MONGODB_URI=mongodb://$service:${!mongo_password}@127.0.0.1:$MONGO_PORT/mp3converter?authSource=mp3converter"
        fi
    done
}

bootstrap_database() {
    say "MariaDB: database, least-privilege user and schema"
    "$VENV/bin/python" dev/bootstrap_db.py
    say "auth: seeding the development user $SEED_EMAIL"
    (cd auth && printf '%s\n' "$SEED_PASSWORD" \
        | "$VENV/bin/flask" --app server create-user "$SEED_EMAIL" --password-stdin --exist-ok >/dev/null)
}

# --- the processes: supervisord -------------------------------------------------------

settings_print() { # what supervisord's programs were started with; a change restarts them all
    { cat "$ENV_FILE" dev/mongo_server.py dev/requirements-mongo.txt
      echo "CONVERTERS=$CONVERTERS MONGODB_URI=${USER_MONGODB_URI:-}"; } | sha256sum
}

code_changed() { # a file of the services' code newer than their last start?
    [ -f "$RUN/services.started" ] || return 0
    [ -n "$(find auth gateway converter notification common \
        \( -name tests -o -name __pycache__ -o -name '*.egg-info' -o -path common/testing \) \
        -prune -o -type f \( -name '*.py' -o -name '*.sql' -o -name '*.txt' \) \
        -newer "$RUN/services.started" -print -quit)" ]
}

start_supervisord() {
    export MONGO_STANDIN=true
    if [ -n "${USER_MONGODB_URI:-}" ]; then
        say "MongoDB: using MONGODB_URI"; MONGO_STANDIN=false
    elif port_open "$MONGO_PORT"; then
        say "MongoDB: reusing what answers on 127.0.0.1:$MONGO_PORT"; MONGO_STANDIN=false
    else
        [ -x "$MONGO_VENV/bin/python" ] || die "no $MONGO_VENV; run 'make run' (it builds it)"
        say "MongoDB stand-in (mongoeco, in memory, dev/test only) on $MONGO_PORT"
    fi
    port_open "$SMTP_SINK_PORT" && die "port $SMTP_SINK_PORT is taken; set SMTP_SINK_PORT"
    # The maildir's own folders: aiosmtpd's Mailbox only makes them when var/mail is new.
    mkdir -p "$VAR/mail/cur" "$VAR/mail/new" "$VAR/mail/tmp" "$VAR/prom/auth" "$VAR/prom/gateway"
    say "supervisord: starting what dev/supervisord.conf runs"
    settings_print >"$RUN/settings.sha256"
    touch "$RUN/services.started"
    "$VENV/bin/supervisord" -c "$CONF" # returns once its socket listens
}

stop_supervisord() { # and everything it runs (each program TERM, KILL after 15 s)
    local pid
    pid=$(cat "$RUN/supervisord.pid")
    ctl shutdown >/dev/null
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    die "supervisord (pid $pid) still runs 60 s after shutdown"
}

start_processes() { # supervisord as `up` left it: started, or brought up to date
    [[ $CONVERTERS =~ ^[1-9]$ ]] || die "CONVERTERS must be 1 to 9 (converter-N serves metrics on 9110+N), not '$CONVERTERS'"
    if ! supervised; then start_supervisord; return; fi
    if [ "$(settings_print)" != "$(cat "$RUN/settings.sha256" 2>/dev/null)" ]; then
        say "settings changed (var/dev.env, CONVERTERS, MONGODB_URI or the MongoDB stand-in): restarting everything supervisord runs"
        stop_supervisord
        start_supervisord
        return
    fi
    say "supervisord: already running"
    ctl update # applies what changed in dev/supervisord.conf
    if code_changed; then
        say "services: code changed since they started, restarting"
        touch "$RUN/services.started"
        ctl restart 'services:*' >/dev/null || true # wait_ready tells what failed
    else
        ctl start 'services:*' >/dev/null || true # the ones `stores` stopped
    fi
}

wait_ready() { # PROGRAM URL: until URL answers; a program supervisord gave up on fails
    local deadline=$((SECONDS + 60)) log="$LOGS/${1#services:}.log"
    until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
        case $(state "$1") in FATAL | EXITED)
            die "$1 exited while starting; see ${log#"$ROOT/"}:
$(tail -n 20 "$log")" ;;
        esac
        [ $SECONDS -lt $deadline ] || die "$1 not ready at $2 within 60 s; see ${log#"$ROOT/"}"
        sleep 0.3
    done
}

wait_stand_ins() {
    [ -n "${USER_MONGODB_URI:-}" ] || wait_port "$MONGO_PORT" 30 "the MongoDB stand-in"
    wait_port "$SMTP_SINK_PORT" 30 "the SMTP sink"
}

wait_services() {
    wait_ready services:auth http://127.0.0.1:5000/readyz
    wait_ready services:gateway http://127.0.0.1:8080/readyz
    wait_ready services:notification http://127.0.0.1:9103/metrics
    for ((i = 1; i <= CONVERTERS; i++)); do
        wait_ready "services:converter-$i" "http://127.0.0.1:$((9110 + i))/metrics"
    done
}

print_usage() {
    local ffmpeg
    ffmpeg=$("$VENV/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())' 2>/dev/null || echo ffmpeg)
    cat <<EOF

mp3converter is running (development mode). Logs: var/log/   Mail: make mail
  gateway        http://127.0.0.1:8080   (mp3converter.com in Kubernetes)
  auth           http://127.0.0.1:5000
  RabbitMQ UI    http://127.0.0.1:15672  (guest/guest)
  MongoDB        ${MONGODB_URI}
  SMTP sink      127.0.0.1:$SMTP_SINK_PORT → var/mail (make mail)
  metrics        http://127.0.0.1:9101/metrics (auth), http://127.0.0.1:9102/metrics (gateway)
                 :9103 (notification), :9111, :9112, … (converter-1, converter-2, …)

Try it (the development user is $SEED_EMAIL / $SEED_PASSWORD):
  $ffmpeg -f lavfi -i testsrc=size=640x360:duration=10 -f lavfi -i sine=duration=10 -shortest -y video.mp4
  T=\$(curl -s -X POST -u "$SEED_EMAIL:$SEED_PASSWORD" http://127.0.0.1:8080/login)
  curl -X POST -H "Authorization: Bearer \$T" -F "file=@video.mp4" http://127.0.0.1:8080/upload
  FID=…the "fid" it answered…
  curl -H "Authorization: Bearer \$T" "http://127.0.0.1:8080/status?fid=\$FID"
  make mail
  curl -H "Authorization: Bearer \$T" "http://127.0.0.1:8080/download?fid=\$FID" -o output.mp3

The reference README's commands work verbatim against this stack when curl is told where
mp3converter.com is: add  --connect-to mp3converter.com:80:127.0.0.1:8080  to each, e.g.
  curl --connect-to mp3converter.com:80:127.0.0.1:8080 -X POST -u "$SEED_EMAIL:$SEED_PASSWORD" http://mp3converter.com/login
EOF
}

start_stores() { # the stores, their accounts, the settings
    USER_MONGODB_URI=${MONGODB_URI:-}
    mkdir -p "$RUN" "$LOGS"
    cmd_deps
    [ -x "$VENV/bin/python" ] || die "no $VENV; run 'make run' (it builds it)"
    start_mariadb
    start_rabbitmq
    write_env_file
    load_env
    ensure_rabbitmq_accounts
    bootstrap_database
}

cmd_up() {
    start_stores
    start_processes
    wait_stand_ins
    wait_services
    ctl status
    print_usage
}

cmd_stores() { # the stores and accounts of `up`, without the services (make image-test)
    start_stores
    start_processes
    # The images take their place: their ports, and their queues' messages.
    say "stopping the services (the images take their place)"
    ctl stop 'services:*' >/dev/null || true
    wait_stand_ins
}

cmd_down() {
    mkdir -p "$RUN"
    if supervised; then say "stopping supervisord and everything it runs"; stop_supervisord; fi
    if [ -f "$RUN/started-rabbitmq" ]; then
        say "stopping RabbitMQ (this stack started it)"
        as_root rabbitmqctl stop >/dev/null 2>&1 || as_root service rabbitmq-server stop || true
        rm -f "$RUN/started-rabbitmq"
    fi
    if [ -f "$RUN/started-mariadb" ]; then
        say "stopping MariaDB (this stack started it)"
        as_root service mariadb stop >/dev/null 2>&1 \
            || as_root start-stop-daemon --stop --oknodo --exec /usr/sbin/mariadbd || true
        rm -f "$RUN/started-mariadb"
    fi
}

cmd_status() {
    if supervised; then ctl status || true; else echo "supervisord: not running"; fi
    port_open 3306 && echo "MariaDB: up$([ -f "$RUN/started-mariadb" ] && echo ', started by us')"
    port_open 5672 && echo "RabbitMQ: up$([ -f "$RUN/started-rabbitmq" ] && echo ', started by us')"
    return 0
}

cd "$ROOT"
case "${1:-}" in
    deps) cmd_deps ;;
    up) cmd_up ;;
    stores) cmd_stores ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: dev/stack.sh deps|up|stores|down|status" ;;
esac
