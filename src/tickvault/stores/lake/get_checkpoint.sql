SELECT last_id FROM lake.ingest_checkpoint
WHERE stream = $stream AND consumer_group = $group
ORDER BY committed_at DESC
LIMIT 1
