"""Upper bound: the same endpoint, scheduling nothing."""

from fastapi import FastAPI

from benchmarks.apps.common import Registered, Server

app = FastAPI()


@app.post("/abcd")
async def register(server: Server) -> Registered:
    return Registered(hostname=server.hostname)
