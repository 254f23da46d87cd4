-- Keep the highest id: with XAUTOCLAIM, batches can commit out of id order.
INSERT INTO {schema}.ingest_checkpoint AS c (stream, grp, last_id, updated_at)
VALUES (%(stream)s, %(grp)s, %(last_id)s, now())
ON CONFLICT (stream, grp) DO UPDATE SET
    last_id = CASE
        WHEN (split_part(EXCLUDED.last_id, '-', 1)::numeric, split_part(EXCLUDED.last_id, '-', 2)::numeric)
           > (split_part(c.last_id, '-', 1)::numeric, split_part(c.last_id, '-', 2)::numeric)
        THEN EXCLUDED.last_id ELSE c.last_id END,
    updated_at = now()
