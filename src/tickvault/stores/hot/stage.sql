-- Per-connection staging table for the binary COPY (prices as exact scaled integers).
CREATE TEMP TABLE IF NOT EXISTS tv_stage (
    symbol      text,
    ts          timestamptz,
    price_e4    bigint,
    volume      bigint,
    cum_volume  bigint,
    side        text,
    source      text,
    received_at timestamptz
) ON COMMIT DELETE ROWS;
