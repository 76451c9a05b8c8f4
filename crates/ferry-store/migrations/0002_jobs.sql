-- Sources and destinations are "actors", as in Airbyte's own schema; connections join two;
-- jobs form one queue lane per region; attempts record where each try ran; connection_state
-- keeps the cursor / primary-key state, the only record-derived data the control plane holds.

CREATE TABLE id_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
-- Job ids are int64 in Airbyte's API; one counter row serves both stores atomically.
INSERT INTO id_counters (name, value) VALUES ('job', 0);

CREATE TABLE actors (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL,
    connector_type TEXT NOT NULL,
    definition_id TEXT NOT NULL,
    configuration TEXT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX actors_listing ON actors (kind, workspace_id, created_at);

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    source_id TEXT NOT NULL REFERENCES actors (id),
    destination_id TEXT NOT NULL REFERENCES actors (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    schedule TEXT NOT NULL,
    configurations TEXT NOT NULL,
    tombstone BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX connections_listing ON connections (workspace_id, created_at);

CREATE TABLE jobs (
    id BIGINT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id),
    workspace_id TEXT NOT NULL,
    -- Fixed from the workspace when the job is created: a later move affects later jobs.
    region_id TEXT NOT NULL REFERENCES regions (id),
    job_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    -- Not claimable before this time (retry backoff).
    next_attempt_at BIGINT NOT NULL,
    current_attempt_id TEXT,
    lease_expires_at BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    failure_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX jobs_lane ON jobs (region_id, status, next_attempt_at, id);
CREATE INDEX jobs_leases ON jobs (status, lease_expires_at);
CREATE INDEX jobs_connection ON jobs (connection_id, id);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    attempt_number BIGINT NOT NULL,
    region_id TEXT NOT NULL,
    dataplane_id TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    rows_synced BIGINT NOT NULL DEFAULT 0,
    bytes_synced BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX attempts_job ON attempts (job_id, attempt_number);

CREATE TABLE connection_state (
    connection_id TEXT NOT NULL REFERENCES connections (id),
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, stream)
);
