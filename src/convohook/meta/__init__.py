"""Meta's side: signature checks, tolerant notification parsing and builders (pure), and the
Instagram User Profile API client (`graph.py`, the one module here that does network I/O)."""
