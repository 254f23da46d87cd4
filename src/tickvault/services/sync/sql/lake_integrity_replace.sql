-- Runs inside one transaction: the new rows replace the old ones of the same day and symbols,
-- keeping the repair counts accumulated by earlier runs of the day.
CREATE OR REPLACE TEMP TABLE integrity_new AS
SELECT n.day, n.symbol, n.ticks, n.volume, n.gaps, n.missing_volume, n.duplicates,
       n.repaired_hot + coalesce(o.repaired_hot, 0) AS repaired_hot,
       n.repaired_cold + coalesce(o.repaired_cold, 0) AS repaired_cold,
       CASE WHEN n.status = 'ok' AND coalesce(o.repaired_hot, 0) + coalesce(o.repaired_cold, 0) > 0 THEN 'repaired'
            ELSE n.status END AS status,
       n.checked_at
FROM integrity_rows n
LEFT JOIN lake.integrity_report o ON o.day = n.day AND o.symbol = n.symbol;
DELETE FROM lake.integrity_report
WHERE day IN (SELECT day FROM integrity_rows) AND symbol IN (SELECT symbol FROM integrity_rows);
INSERT INTO lake.integrity_report SELECT * FROM integrity_new;
DROP TABLE integrity_new;
