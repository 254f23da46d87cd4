-- Ticks with $start <= ts < $end (optionally only $symbols), as of a snapshot.
-- {at} is empty or an "AT (VERSION => $as_of)" / "AT (TIMESTAMP => $as_of)" clause.
SELECT symbol, ts, price, volume, cum_volume, side, source, received_at
FROM lake.ticks {at}
WHERE trade_date BETWEEN $first_day AND $last_day
  AND ts >= $start AND ts < $end
  AND ($symbols IS NULL OR list_contains($symbols, symbol))
ORDER BY symbol, trade_date, cum_volume
