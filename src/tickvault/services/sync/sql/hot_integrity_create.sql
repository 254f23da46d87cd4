-- One row per (date, symbol), rewritten by every reconcile: the basis of the daily report.
CREATE TABLE IF NOT EXISTS {table} (
    day            date        NOT NULL,
    symbol         text        NOT NULL,
    ticks          bigint      NOT NULL,
    volume         bigint      NOT NULL,
    gaps           integer     NOT NULL,
    missing_volume bigint      NOT NULL,
    duplicates     bigint      NOT NULL,
    repaired_hot   bigint      NOT NULL,
    repaired_cold  bigint      NOT NULL,
    status         text        NOT NULL,
    checked_at     timestamptz NOT NULL,
    PRIMARY KEY (day, symbol)
)
