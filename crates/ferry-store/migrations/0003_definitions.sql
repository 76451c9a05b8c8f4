-- Custom connector definitions of a workspace (Airbyte's `/workspaces/{id}/definitions/...`).
-- Ferry runs them as local programs speaking the Airbyte protocol: `command` is a JSON array.
CREATE TABLE connector_definitions (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    docker_repository TEXT NOT NULL,
    docker_image_tag TEXT NOT NULL,
    documentation_url TEXT,
    command TEXT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX connector_definitions_workspace ON connector_definitions (workspace_id, kind);
