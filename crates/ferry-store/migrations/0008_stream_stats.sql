-- What each attempt committed per stream (JSON array of {streamName, streamNamespace,
-- recordsCommitted, bytesCommitted}), beside its totals.
ALTER TABLE attempts ADD COLUMN stream_stats TEXT NOT NULL DEFAULT '[]';
