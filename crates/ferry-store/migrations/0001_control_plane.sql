-- Portable DDL: the same text runs on SQLite and PostgreSQL. Ids are TEXT (UUIDs), times are
-- epoch milliseconds (BIGINT), flags are 0/1 (BIGINT), so one query text serves both stores.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    default_region_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE regions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    -- lower(name): region names are unique per organization, case-insensitively.
    name_key TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX regions_unique_live_name ON regions (organization_id, name_key) WHERE tombstone = 0;

CREATE TABLE dataplanes (
    id TEXT PRIMARY KEY,
    region_id TEXT NOT NULL REFERENCES regions (id),
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    -- After a rotation the old secret stays valid until this time (grace period).
    previous_secret_hash TEXT,
    previous_secret_valid_until BIGINT,
    last_heartbeat_at BIGINT,
    version TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX dataplanes_region ON dataplanes (region_id);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    region_id TEXT NOT NULL REFERENCES regions (id),
    notifications TEXT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX workspaces_region ON workspaces (region_id);
CREATE INDEX workspaces_listing ON workspaces (created_at, id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE permissions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    permission_type TEXT NOT NULL,
    workspace_id TEXT REFERENCES workspaces (id),
    organization_id TEXT REFERENCES organizations (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX permissions_user ON permissions (user_id);

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX applications_user ON applications (user_id);

-- Bearer tokens, by the SHA-256 of the token: a leaked table grants nothing.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_principal ON access_tokens (principal_kind, principal_id);

CREATE TABLE instance_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
