#!/usr/bin/env bash
# `make k8s-secrets`: write the untracked env file the kustomization's secretGenerator reads,
# with a fresh random value for every generated secret, and a self-signed TLS certificate
# for the two ingress names (k8s-tls.crt, k8s-tls.key beside it; deploy/README.md says how
# to trust it or put a real one in its place).
# An existing file is kept: MySQL, MongoDB and RabbitMQ store the passwords on their volumes
# at first start, so new values would lock the services out of their own data. Only the
# keys it lacks (a file from an older version) are added; an existing certificate is kept.
# The values are hex: safe inside URLs (RABBITMQ_URL, MONGODB_URI), SQL and shell.
set -euo pipefail
FILE=${1:-k8s-secrets.env}
DIR=$(dirname "$FILE")
CERT=$DIR/k8s-tls.crt KEY=$DIR/k8s-tls.key
# The names the ingresses serve (gateway/manifests/ingress.yaml,
# deploy/components/rabbitmq-ui/ingress.yaml).
TLS_NAMES=(mp3converter.com rabbitmq-manager.com)
random() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
umask 077

if [ -e "$FILE" ]; then
    echo "$FILE exists; keeping its values (delete it only together with the cluster's volumes)"
else
    cat >"$FILE" <<ENV
# Made by \`make k8s-secrets\`; never commit this file (.gitignore has it).
# Your Gmail app password (https://myaccount.google.com/apppasswords), or your SMTP
# provider's; without it no mail is sent and the notification pod says why.
GMAIL_PASSWORD=
ENV
    echo "wrote $FILE with new random secrets"
fi
# Every generated secret: one account per service in each store, and the RabbitMQ
# management UI's administrator, which no service has.
for name in MYSQL_ROOT_PASSWORD MYSQL_PASSWORD JWT_SECRET LOG_ACCOUNT_KEY MONGODB_ROOT_PASSWORD \
    MONGODB_GATEWAY_PASSWORD MONGODB_CONVERTER_PASSWORD MONGODB_NOTIFICATION_PASSWORD \
    RABBITMQ_ADMIN_PASSWORD RABBITMQ_GATEWAY_PASSWORD RABBITMQ_CONVERTER_PASSWORD \
    RABBITMQ_NOTIFICATION_PASSWORD; do
    if ! grep -q "^$name=" "$FILE"; then
        case $name in JWT_SECRET | LOG_ACCOUNT_KEY) bytes=32 ;; *) bytes=24 ;; esac
        printf '%s=%s\n' "$name" "$(random $bytes)" >>"$FILE"
        echo "  added $name"
    fi
done

if [ -e "$CERT" ] && [ -e "$KEY" ]; then
    echo "$CERT exists; keeping it"
else
    sans=$(printf 'DNS:%s,' "${TLS_NAMES[@]}")
    openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 825 -subj "/CN=${TLS_NAMES[0]}" \
        -addext "subjectAltName=${sans%,}" -addext "extendedKeyUsage=serverAuth" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
        -keyout "$KEY" -out "$CERT" 2>/dev/null
    echo "wrote $CERT and $KEY: self-signed for ${TLS_NAMES[*]}, 825 days"
fi
