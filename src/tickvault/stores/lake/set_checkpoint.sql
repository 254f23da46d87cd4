-- Append, never update: a DELETE on the (inlined) checkpoint table costs ~30 ms per commit,
-- an INSERT ~1 ms. The newest row per group wins; compaction prunes the older ones.
INSERT INTO lake.ingest_checkpoint VALUES ($stream, $group, $last_id, now())
