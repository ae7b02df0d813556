"""One module per system for the side-by-side drain: `python -m benchmarks.drain.peers.NAME
prepare|enqueue N|worker` (some systems' workers are their own CLIs; see `compare.py`)."""
