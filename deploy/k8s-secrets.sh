#!/usr/bin/env bash
# `make k8s-secrets`: write the untracked env file the kustomization's secretGenerator reads,
# with a fresh random value for every generated secret. An existing file is kept as it is:
# MySQL, MongoDB and RabbitMQ store the passwords on their volumes at first start, so new
# values would lock the services out of their own data.
# The values are hex: safe inside URLs (RABBITMQ_URL, MONGODB_URI), SQL and shell.
set -euo pipefail
FILE=${1:-k8s-secrets.env}
if [ -e "$FILE" ]; then
    echo "$FILE exists; keeping it (delete it only together with the cluster's volumes)"
    exit 0
fi
random() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
cat >"$FILE" <<ENV
# Made by \`make k8s-secrets\`; never commit this file (.gitignore has it).
MYSQL_ROOT_PASSWORD=$(random 24)
MYSQL_PASSWORD=$(random 24)
JWT_SECRET=$(random 32)
MONGODB_ROOT_PASSWORD=$(random 24)
MONGODB_PASSWORD=$(random 24)
RABBITMQ_PASSWORD=$(random 24)
# Your Gmail app password (https://myaccount.google.com/apppasswords), or your SMTP
# provider's; without it no mail is sent and the notification pod says why.
GMAIL_PASSWORD=
ENV
echo "wrote $FILE with new random secrets"
