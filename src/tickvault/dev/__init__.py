"""Development tools: embedded servers, the simulator and the demo (the [demo] extra)."""
