-- Where a connection puts streams in the destination: Airbyte's namespaceDefinition,
-- namespaceFormat and prefix, as one JSON object.
ALTER TABLE connections ADD COLUMN naming TEXT NOT NULL DEFAULT '{}';
