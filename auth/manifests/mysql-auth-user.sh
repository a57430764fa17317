#!/bin/bash
# Sourced by the MySQL image's entrypoint once, on an empty data directory, after
# 01-schema.sql (auth/init.sql). The auth service's own account: it reads, adds and removes
# users and changes a user's password hash and token version, nothing else (as
# dev/bootstrap_db.py grants on the developer's machine).
# mysql_native_password: auth's client library (MariaDB Connector/C, in mysqlclient) can
# then log in over plain TCP; MySQL 8's caching_sha2_password wants TLS or the server's
# RSA key for that. The server enables the plugin with --mysql-native-password=ON.
docker_process_sql <<-EOSQL
	CREATE USER IF NOT EXISTS '${AUTH_MYSQL_USER}'@'%' IDENTIFIED WITH mysql_native_password BY '${AUTH_MYSQL_PASSWORD}';
	GRANT SELECT, INSERT, DELETE ON \`${MYSQL_DATABASE}\`.\`user\` TO '${AUTH_MYSQL_USER}'@'%';
	GRANT UPDATE (password_hash, token_version) ON \`${MYSQL_DATABASE}\`.\`user\` TO '${AUTH_MYSQL_USER}'@'%';
EOSQL
