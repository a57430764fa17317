#!/usr/bin/env bash
# The whole mp3converter system on one machine, for development and tests.
#
#   dev/stack.sh deps     install the apt packages that are missing (idempotent)
#   dev/stack.sh up       start what is not running, reuse what is, print how to try it
#   dev/stack.sh stores   only the stores and their accounts; stop the services (for images)
#   dev/stack.sh down     stop exactly what `up` started
#   dev/stack.sh status   what runs, and who started it
#
# MariaDB and RabbitMQ already answering on their standard ports are reused (and then
# never stopped by `down`); otherwise they are installed with apt and started. MongoDB:
# MONGODB_URI when set, else the mongoeco stand-in (dev/mongo_server.py). Mail goes to a
# local SMTP sink that keeps every message in var/mail (see `make mail`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR="$ROOT/var"
RUN="$VAR/run"
LOGS="$VAR/log"
ENV_FILE="$VAR/dev.env"
VENV="$ROOT/.venv"
MONGO_VENV="$ROOT/.venv-mongo"
SMTP_SINK_PORT=${SMTP_SINK_PORT:-1025}
MONGO_PORT=${MONGO_PORT:-27017}
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

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

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

start_mongo() {
    if [ -n "${USER_MONGODB_URI:-}" ]; then say "MongoDB: using MONGODB_URI"; return; fi
    local print
    print=$( (sha256sum dev/mongo_server.py dev/requirements-mongo.txt; echo "$MONGODB_USER:$MONGODB_PASSWORD") \
        | sha256sum | cut -c1-16)
    if alive mongo; then
        if [ "$(cat "$RUN/mongo.fingerprint" 2>/dev/null)" = "$print" ]; then
            say "MongoDB stand-in: already running"; return
        fi
        say "MongoDB stand-in: its launcher changed, restarting (it keeps nothing)"
        stop_pid mongo
    fi
    if port_open "$MONGO_PORT"; then
        say "MongoDB: reusing what answers on 127.0.0.1:$MONGO_PORT"; return
    fi
    [ -x "$MONGO_VENV/bin/python" ] || die "no $MONGO_VENV; run 'make run' (it builds it)"
    say "MongoDB stand-in (mongoeco, in memory, dev/test only): starting on $MONGO_PORT"
    spawn mongo "exec '$MONGO_VENV/bin/python' dev/mongo_server.py --host 127.0.0.1 --port $MONGO_PORT --user '$MONGODB_USER@mp3converter:MONGODB_PASSWORD'"
    echo "$print" >"$RUN/mongo.fingerprint"
    wait_port "$MONGO_PORT" 30 "the MongoDB stand-in"
}

start_smtp_sink() {
    if alive smtp-sink; then say "SMTP sink: already running"; return; fi
    port_open "$SMTP_SINK_PORT" && die "port $SMTP_SINK_PORT is taken; set SMTP_SINK_PORT"
    # The maildir's own folders: aiosmtpd's Mailbox only makes them when var/mail is new.
    mkdir -p "$VAR/mail/cur" "$VAR/mail/new" "$VAR/mail/tmp"
    say "SMTP sink: starting on $SMTP_SINK_PORT, mail kept in var/mail"
    spawn smtp-sink "exec '$VENV/bin/python' -m aiosmtpd -n -l 127.0.0.1:$SMTP_SINK_PORT -c aiosmtpd.handlers.Mailbox '$VAR/mail'"
    wait_port "$SMTP_SINK_PORT" 30 "the SMTP sink"
}

ensure_rabbitmq_account() { # the services' account the manifests name (RABBITMQ_USER)
    local api=http://127.0.0.1:15672/api
    port_open 15672 || { say "RabbitMQ: no management API; $RABBITMQ_USER not made"; return; }
    # Through the management API (the broker may be another machine's or a container's),
    # as guest; the password goes in on stdin, never on a command line.
    printf '{"password": "%s", "tags": ""}' "$RABBITMQ_PASSWORD" \
        | curl -fsS -o /dev/null -u guest:guest -X PUT -H 'content-type: application/json' \
            --data-binary @- "$api/users/$RABBITMQ_USER" \
        || die "RabbitMQ: cannot create the account $RABBITMQ_USER through $api"
    curl -fsS -o /dev/null -u guest:guest -X PUT -H 'content-type: application/json' \
        --data '{"configure": ".*", "write": ".*", "read": ".*"}' \
        "$api/permissions/%2F/$RABBITMQ_USER" \
        || die "RabbitMQ: cannot give $RABBITMQ_USER its permissions"
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
    # The accounts the Kubernetes manifests name, made in the dev stores too (the MongoDB
    # stand-in knows the user, RabbitMQ gets it below): `make image-test` runs the images
    # with them. Added to an older dev.env that lacks them.
    ensure_env MONGODB_USER mp3converter
    ensure_env MONGODB_PASSWORD "$(random_secret)"
    ensure_env RABBITMQ_USER mp3converter
    ensure_env RABBITMQ_PASSWORD "$(random_secret)"
}

ensure_env() { # NAME VALUE: add NAME=VALUE to the env file unless NAME is there
    grep -q "^$1=" "$ENV_FILE" || printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"
}

load_env() {
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
    if [ -n "${USER_MONGODB_URI:-}" ]; then MONGODB_URI=$USER_MONGODB_URI; fi
}

bootstrap_database() {
    say "MariaDB: database, least-privilege user and schema"
    "$VENV/bin/python" dev/bootstrap_db.py
    say "auth: seeding the development user $SEED_EMAIL"
    (cd auth && printf '%s\n' "$SEED_PASSWORD" \
        | "$VENV/bin/flask" --app server create-user "$SEED_EMAIL" --password-stdin --exist-ok >/dev/null)
}

# --- the services ----------------------------------------------------------------------

spawn() { # NAME COMMAND: start in its own session, pid in var/run, output in var/log
    local name=$1 command=$2
    (cd "$ROOT" && exec setsid bash -c "$command" >>"$LOGS/$name.log" 2>&1 </dev/null) &
    echo $! >"$RUN/$name.pid"
}

fingerprint() { # the content of a service's folder and of common/, so edits restart it
    (cd "$ROOT" && find "$1" common -type f \( -name '*.py' -o -name '*.sql' -o -name '*.txt' \) \
        -not -path '*/tests/*' -not -path '*/__pycache__/*' -not -path 'common/testing/*' \
        -not -path '*.egg-info/*' -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -c1-16)
}

stop_pid() { # NAME: TERM the process group, then KILL after 15 s
    local name=$1 pid
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.fingerprint"
}

wait_ready() { # NAME URL
    local deadline=$((SECONDS + 60))
    [ "$2" = "-" ] && return 0
    until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
        alive "$1" || die "$1 exited while starting; see var/log/$1.log:
$(tail -n 20 "$LOGS/$1.log")"
        [ $SECONDS -lt $deadline ] || die "$1 not ready at $2 within 60 s; see var/log/$1.log"
        sleep 0.3
    done
}

start_services() {
    local name url command print
    while read -r name url command; do
        case "$name" in ''|'#'*) continue ;; esac
        print="$(fingerprint "${name%%-*}")-$(printf '%s' "$command" | sha256sum | cut -c1-8)"
        if alive "$name"; then
            if [ "$(cat "$RUN/$name.fingerprint" 2>/dev/null)" = "$print" ]; then
                say "$name: already running"; continue
            fi
            say "$name: code changed, restarting"
            stop_pid "$name"
        fi
        say "$name: starting"
        spawn "$name" "$command"
        echo "$print" >"$RUN/$name.fingerprint"
        wait_ready "$name" "$url"
    done < <(service_lines)
    stop_surplus
}

# dev/services without comments. A COMMAND starting with @VAR=N stands for N copies,
# NAME-1 .. NAME-N, or as many as the variable VAR says (CONVERTERS=3 make run); {n} in
# such a COMMAND or READY-URL becomes the copy's number (e.g. a port of its own:
# $((9110 + {n})) in the command, 911{n} in the URL).
service_lines() {
    local name url command var count i
    while read -r name url command; do
        case "$name" in ''|'#'*) continue ;; esac
        if [[ $command =~ ^@([A-Z_]+)=([0-9]+)[[:space:]]+(.*)$ ]]; then
            var=${BASH_REMATCH[1]} count=${BASH_REMATCH[2]} command=${BASH_REMATCH[3]}
            count=${!var:-$count}
            [[ $count =~ ^[0-9]+$ ]] || die "$var must be a number of processes, not '$count'"
            for ((i = 1; i <= count; i++)); do
                printf '%s %s %s\n' "$name-$i" "${url//\{n\}/$i}" "${command//\{n\}/$i}"
            done
        else
            printf '%s %s %s\n' "$name" "$url" "$command"
        fi
    done <"$ROOT/dev/services"
}

stop_surplus() { # what runs but is no longer wanted (e.g. CONVERTERS went down)
    local pidfile name
    for pidfile in "$RUN"/*.pid; do
        [ -e "$pidfile" ] || continue
        name=$(basename "$pidfile" .pid)
        case "$name" in smtp-sink|mongo) continue ;; esac
        service_lines | awk '{print $1}' | grep -qx "$name" && continue
        say "$name: no longer in dev/services, stopping"
        stop_pid "$name"
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
    start_mongo
    start_smtp_sink
    ensure_rabbitmq_account
    bootstrap_database
}

cmd_up() {
    start_stores
    start_services
    print_usage
}

cmd_stores() { # the stores and accounts of `up`, without the services (make image-test)
    start_stores
    # The images take their place: their ports, and their queues' messages.
    local name
    for name in $(service_lines | awk '{print $1}'); do
        if alive "$name"; then say "stopping $name (the images take its place)"; stop_pid "$name"; fi
    done
}

cmd_down() {
    local name
    mkdir -p "$RUN"
    for name in $( (service_lines | awk '{print $1}'; cd "$RUN" && ls -- *.pid 2>/dev/null \
        | sed 's/\.pid$//' | grep -vx 'smtp-sink\|mongo'; echo smtp-sink; echo mongo) ); do
        if [ -f "$RUN/$name.pid" ]; then say "stopping $name"; stop_pid "$name"; fi
    done
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
    local name
    for name in $( (service_lines | awk '{print $1}'; echo smtp-sink; echo mongo) ); do
        if alive "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"
        else echo "$name: stopped"; fi
    done
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
