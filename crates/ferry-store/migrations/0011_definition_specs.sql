-- The SPEC a custom definition's program printed (its `connectionSpecification`), learnt from
-- a data plane of the workspace's region: which configuration fields are secret. NULL until
-- a data plane ran `spec`.
ALTER TABLE connector_definitions ADD COLUMN spec TEXT;
