"""tickvault: zero-loss archive of Korean stock-market ticks (Redis stream -> hot PostgreSQL/TimescaleDB + cold DuckLake)."""

__version__ = "0.1.0"
