"""Services: the archiver, query API, sync, recovery, collectors and candles, built on the stores."""
