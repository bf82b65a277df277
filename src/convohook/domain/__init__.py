"""Pure domain logic: no I/O, no clocks, no randomness that is not passed in."""
