-- How many bytes of an attempt's log the control plane holds in its log bucket (streamed
-- there by the data plane while the attempt runs), so that a data plane that reconnects
-- resends from there and parts are never written twice.
ALTER TABLE attempts ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
-- A large state kept in the data planes' state bucket: its key, SHA-256 and size (JSON);
-- `state` is then JSON null.
ALTER TABLE connection_state ADD COLUMN state_reference TEXT;
