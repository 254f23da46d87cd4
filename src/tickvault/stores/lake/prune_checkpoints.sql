-- Keep only the newest checkpoint row of each (stream, group).
DELETE FROM lake.ingest_checkpoint AS c
WHERE c.committed_at < (
    SELECT max(n.committed_at) FROM lake.ingest_checkpoint AS n
    WHERE n.stream = c.stream AND n.consumer_group = c.consumer_group
)
