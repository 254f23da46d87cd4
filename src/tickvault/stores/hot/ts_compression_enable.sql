-- Segment by symbol, order by cum_volume: one symbol's day compresses into sorted runs.
ALTER TABLE {schema}.ticks SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol',
    timescaledb.compress_orderby = 'cum_volume'
)
