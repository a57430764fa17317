#!/usr/bin/env bash
# RabbitMQ's accounts: one per service, with only the rights its queues need, and the
# management UI's administrator, which no service uses. The one table of them: the cluster
# runs this in the broker's pod (rabbit/manifests/statefulset.yaml, postStart, with
# rabbitmqctl) and `make run` on the dev broker (dev/stack.sh, through the management
# API), so the services run with the same rights everywhere and a missing right fails a test.
#
#   rabbitmq-accounts.sh          create or update every account (idempotent)
#   rabbitmq-accounts.sh --print  the table: user, configure, write, read, tags (tab-separated)
#
# Environment: VIDEO_QUEUE, MP3_QUEUE (the services' queue settings; default video, mp3);
# RABBITMQ_{GATEWAY,CONVERTER,NOTIFICATION}_USER (default: the service's name) and
# RABBITMQ_{GATEWAY,CONVERTER,NOTIFICATION}_PASSWORD; RABBITMQ_ADMIN_USER (default admin)
# and RABBITMQ_ADMIN_PASSWORD (unset: no administrator is made; the dev broker's is guest,
# which logs in from its own machine only). RABBITMQ_API (e.g. http://127.0.0.1:15672/api)
# with RABBITMQ_API_CREDENTIALS (user:password): use the management API instead of
# rabbitmqctl. Passwords go in on stdin, never on a command line.
#
# The rights follow mp3common.amqp (see table below). No service may write to the default
# exchange (amq.default), which reaches every queue: producers publish to the queue's own
# exchange `<queue>.exchange`, and dead letters go through `<queue>.dlx`. So the converter
# cannot publish to `video`, nor the notification service to any queue.
set -euo pipefail

video=${VIDEO_QUEUE:-video}
mp3=${MP3_QUEUE:-mp3}
re() { # a queue name as a literal in a regexp (queue names here are [A-Za-z0-9._-])
    [[ $1 =~ ^[A-Za-z0-9._-]+$ ]] || { echo "rabbitmq-accounts: odd queue name '$1'" >&2; exit 1; }
    printf '%s' "${1//./\\.}"
}
v=$(re "$video") m=$(re "$mp3")

table() { # user configure write read tags
    # Declaring a queue Q (every side does, with its dead-letter queue Q.dlq and exchange
    # Q.dlx): configure Q, Q.dlq, Q.dlx; write Q.dlq (the binding) and Q.dlx (RabbitMQ's
    # rule for a queue with a dead-letter exchange); read Q (the same rule) and Q.dlx.
    # Producing to Q: configure and write Q.exchange, write Q and read Q.exchange (binding).
    # Consuming Q: read Q.
    # The gateway declares and produces video.
    printf '%s\t%s\t%s\t%s\t%s\n' "${RABBITMQ_GATEWAY_USER:-gateway}" \
        "^$v(\\.dlq|\\.dlx|\\.exchange)?\$" "^$v(\\.dlq|\\.dlx|\\.exchange)?\$" \
        "^$v(\\.dlx|\\.exchange)?\$" ""
    # The converter declares and consumes video and its dead letters (the reaper), and
    # declares and produces mp3. Not video.exchange: it cannot publish to video.
    printf '%s\t%s\t%s\t%s\t%s\n' "${RABBITMQ_CONVERTER_USER:-converter}" \
        "^($v(\\.dlq|\\.dlx)?|$m(\\.dlq|\\.dlx|\\.exchange)?)\$" \
        "^($v\\.dlq|$v\\.dlx|$m(\\.dlq|\\.dlx|\\.exchange)?)\$" \
        "^($v(\\.dlq|\\.dlx)?|$m(\\.dlx|\\.exchange)?)\$" ""
    # The notification service declares and consumes mp3, and publishes nothing.
    printf '%s\t%s\t%s\t%s\t%s\n' "${RABBITMQ_NOTIFICATION_USER:-notification}" \
        "^$m(\\.dlq|\\.dlx)?\$" "^$m\\.(dlq|dlx)\$" "^$m(\\.dlx)?\$" ""
    # The management UI's administrator: every right, for the operator only.
    if [ -n "${RABBITMQ_ADMIN_PASSWORD:-}" ]; then
        printf '%s\t%s\t%s\t%s\t%s\n' "${RABBITMQ_ADMIN_USER:-admin}" '.*' '.*' '.*' administrator
    fi
}

password_of() { # USER: its password variable's value
    case $1 in
        "${RABBITMQ_GATEWAY_USER:-gateway}") printf '%s' "${RABBITMQ_GATEWAY_PASSWORD:?}" ;;
        "${RABBITMQ_CONVERTER_USER:-converter}") printf '%s' "${RABBITMQ_CONVERTER_PASSWORD:?}" ;;
        "${RABBITMQ_NOTIFICATION_USER:-notification}") printf '%s' "${RABBITMQ_NOTIFICATION_PASSWORD:?}" ;;
        *) printf '%s' "${RABBITMQ_ADMIN_PASSWORD:?}" ;;
    esac
}

json() { # a string as a JSON string
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

api() { # METHOD PATH [BODY on stdin]
    curl -fsS -o /dev/null -u "${RABBITMQ_API_CREDENTIALS:?}" -X "$1" \
        -H 'content-type: application/json' --data-binary @- "$RABBITMQ_API$2"
}

apply_api() { # USER CONFIGURE WRITE READ TAGS
    { printf '{"password": '; json "$(password_of "$1")"; printf ', "tags": '; json "$5"; printf '}'; } \
        | api PUT "/users/$1"
    printf '{"configure": %s, "write": %s, "read": %s}' "$(json "$2")" "$(json "$3")" "$(json "$4")" \
        | api PUT "/permissions/%2F/$1"
}

apply_ctl() { # USER CONFIGURE WRITE READ TAGS
    if rabbitmqctl -q list_users | cut -f1 | grep -qxF "$1"; then
        password_of "$1" | rabbitmqctl -q change_password "$1" >/dev/null
    else
        password_of "$1" | rabbitmqctl -q add_user "$1" >/dev/null
    fi
    # shellcheck disable=SC2086 # no tags, or one
    rabbitmqctl -q set_user_tags "$1" $5
    rabbitmqctl -q set_permissions -p / "$1" "$2" "$3" "$4"
}

if [ "${1:-}" = --print ]; then
    table
    exit 0
fi

if [ -n "${RABBITMQ_API:-}" ]; then
    apply=apply_api
else
    apply=apply_ctl
    # Run beside the broker's start (postStart): wait until it serves.
    for _ in $(seq 60); do rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 && break; sleep 5; done
    rabbitmqctl -q await_startup --timeout 10
fi
# The table on descriptor 3: rabbitmqctl reads stdin.
while IFS=$'\t' read -r -u 3 user configure write read tags; do
    "$apply" "$user" "$configure" "$write" "$read" "$tags" </dev/null
done 3< <(table)
# Before issue 15 the services shared one account, also the UI's administrator.
legacy=mp3converter
if [ "$apply" = apply_ctl ] && rabbitmqctl -q list_users | cut -f1 | grep -qxF "$legacy"; then
    rabbitmqctl -q delete_user "$legacy"
fi
echo "RabbitMQ accounts: $(table | cut -f1 | tr '\n' ' ')"
