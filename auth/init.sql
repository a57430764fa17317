-- The auth service's schema. Idempotent: safe to run on every start.
-- Run against the service's database (MYSQL_DB); creating the database and its
-- least-privilege user is the deployment's job (dev/stack.sh, or the k8s init job),
-- because the password must not live in this file.
CREATE TABLE IF NOT EXISTS user (
    id            INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Stored lower-cased by the service and compared byte for byte: no collation may
    -- make two different strings the same account.
    email         VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    -- Raised by every password change: a token carries the version it was issued at
    -- (claim `ver`, with the row's `id` as `uid`), and /validate refuses any other, so a
    -- password change or a deleted row ends every token issued before. auth_service.schema
    -- adds it to a table made before it existed.
    token_version INT UNSIGNED NOT NULL DEFAULT 0,
    created_at    TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_user_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
