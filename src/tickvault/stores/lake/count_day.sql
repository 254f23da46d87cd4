SELECT count(*) FROM lake.ticks WHERE trade_date = $day
