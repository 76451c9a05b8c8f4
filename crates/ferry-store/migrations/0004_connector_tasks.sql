-- Short connector commands (check, discover) that must run in a workspace's region, on one
-- of its data planes, while an API call waits for the answer.
CREATE TABLE connector_tasks (
    id TEXT PRIMARY KEY,
    region_id TEXT NOT NULL REFERENCES regions (id),
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL REFERENCES actors (id),
    status TEXT NOT NULL,
    dataplane_id TEXT,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX connector_tasks_lane ON connector_tasks (region_id, status, created_at);
