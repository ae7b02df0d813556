"""One module per benchmarked system; each exposes a FastAPI ``app`` serving POST /abcd."""
