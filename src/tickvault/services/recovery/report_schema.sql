CREATE TABLE IF NOT EXISTS {table} (
    day date NOT NULL,
    broker text NOT NULL,
    symbol text NOT NULL,
    status text NOT NULL,
    complete boolean NOT NULL,
    ticks_before bigint NOT NULL,
    ticks_after bigint NOT NULL,
    gaps_found integer NOT NULL,
    ticks_recovered bigint NOT NULL,
    volume_recovered bigint NOT NULL,
    minutes_disagreeing integer NOT NULL,
    detail jsonb NOT NULL,
    ran_at timestamptz NOT NULL,
    PRIMARY KEY (day, broker, symbol)
)
