#!/bin/bash
# Sourced by the MySQL image's entrypoint once, on an empty data directory, after
# 01-schema.sql (auth/init.sql). The auth service's own account: it reads users and adds
# them, nothing else (as dev/bootstrap_db.py grants on the developer's machine).
docker_process_sql <<-EOSQL
	CREATE USER IF NOT EXISTS '${AUTH_MYSQL_USER}'@'%' IDENTIFIED BY '${AUTH_MYSQL_PASSWORD}';
	GRANT SELECT, INSERT ON \`${MYSQL_DATABASE}\`.\`user\` TO '${AUTH_MYSQL_USER}'@'%';
EOSQL
