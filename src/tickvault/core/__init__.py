"""Core: the wire model, settings, errors, calendar, timeframes and the stream. Imports nothing above it."""
