"""Use cases: plain functions of a storage `Transaction` and the pure domain; no HTTP."""
