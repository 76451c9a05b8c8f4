-- Why an attempt, and its job, failed, in Airbyte's words: where the failure came from
-- (`source`, `destination`, `replication`, `persistence`, `airbyte_platform`, `unknown`) and
-- what kind it is (`config_error`, `system_error`, `transient_error`, ...). A config_error is
-- not retried. NULL for what did not fail, and for rows older than this migration.
ALTER TABLE attempts ADD COLUMN failure_origin TEXT;
ALTER TABLE attempts ADD COLUMN failure_type TEXT;
ALTER TABLE jobs ADD COLUMN failure_origin TEXT;
ALTER TABLE jobs ADD COLUMN failure_type TEXT;
