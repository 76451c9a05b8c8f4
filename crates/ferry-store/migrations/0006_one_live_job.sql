-- At most one job under way per connection, whatever the races between API calls, the
-- scheduler and control-plane replicas.
CREATE UNIQUE INDEX jobs_one_live_per_connection ON jobs (connection_id)
    WHERE status IN ('pending', 'running', 'incomplete');
