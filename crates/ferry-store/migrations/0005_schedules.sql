-- When a cron-scheduled connection next runs (epoch ms); NULL for manual ones.
ALTER TABLE connections ADD COLUMN next_run_at BIGINT;
CREATE INDEX connections_due ON connections (next_run_at);
