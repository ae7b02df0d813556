"""Side-by-side benchmark of afterwork, FastAPI's in-memory BackgroundTasks and the peers."""
