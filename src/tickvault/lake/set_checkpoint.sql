DELETE FROM lake.ingest_checkpoint WHERE stream = $stream AND consumer_group = $group;
INSERT INTO lake.ingest_checkpoint VALUES ($stream, $group, $last_id, now());
