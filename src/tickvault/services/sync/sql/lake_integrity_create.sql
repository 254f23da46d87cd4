-- Lake twin of hot_integrity_create.sql (DuckLake has no primary keys: rows are replaced per day+symbol).
CREATE TABLE IF NOT EXISTS lake.integrity_report (
    day            DATE        NOT NULL,
    symbol         VARCHAR     NOT NULL,
    ticks          BIGINT      NOT NULL,
    volume         BIGINT      NOT NULL,
    gaps           INTEGER     NOT NULL,
    missing_volume BIGINT      NOT NULL,
    duplicates     BIGINT      NOT NULL,
    repaired_hot   BIGINT      NOT NULL,
    repaired_cold  BIGINT      NOT NULL,
    status         VARCHAR     NOT NULL,
    checked_at     TIMESTAMPTZ NOT NULL
)
