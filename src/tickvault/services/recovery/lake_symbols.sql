-- Symbols the lake holds for one KST trading date.
SELECT DISTINCT symbol FROM lake.ticks WHERE trade_date = $day ORDER BY symbol
