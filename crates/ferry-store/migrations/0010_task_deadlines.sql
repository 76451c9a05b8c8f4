-- When a connector task must be answered by (epoch ms): the API call waiting for it gives
-- up then, so a data plane may claim it only before. Tasks queued before this migration
-- have no waiter any more (the control plane restarted): 0, never claimable.
ALTER TABLE connector_tasks ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
