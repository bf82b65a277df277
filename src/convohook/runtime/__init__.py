"""Long-running workers and the wiring that starts them (used by `serve` and `worker`)."""
