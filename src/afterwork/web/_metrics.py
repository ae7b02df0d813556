"""Prometheus metrics at `{dashboard_prefix}/metrics` (needs `pip install 'afterwork[metrics]'`):
tasks by state (read from the store at scrape), queue depth, task durations (from events),
runners alive (from their heartbeats)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._errors import ConfigurationError
from .._events import EventKind, TaskEvent
from ._auth import deny
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console


def require_prometheus() -> None:
    """ConfigurationError, saying what to install, unless prometheus-client is there."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError("Afterwork(metrics=True) needs prometheus-client: "
                                 "pip install 'afterwork[metrics]'") from exc


def build_metrics(console: Console, reads: Reads) -> list[BaseRoute]:
    require_prometheus()
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    registry = CollectorRegistry()
    durations = Histogram("afterwork_task_duration_seconds", "Task execution time",
                          ["name", "outcome"], registry=registry)
    events = Counter("afterwork_task_events", "Task events by kind", ["kind"], registry=registry)

    def on_event(event: TaskEvent) -> None:
        events.labels(event.kind.value).inc()
        if event.duration_seconds is not None and event.kind in (EventKind.SUCCEEDED, EventKind.FAILED):
            durations.labels(event.task.name, event.kind.value).observe(event.duration_seconds)

    console.subscribe(on_event)

    class StoreCollector:
        def collect(self) -> Iterator[Any]:
            by_state = GaugeMetricFamily("afterwork_tasks", "Stored tasks by state", labels=["state"])
            totals: dict[str, int] = {}
            for (state, _), n in console.tasks.counts().items():
                totals[state] = totals.get(state, 0) + n
            for state in ("queued", "running", "succeeded", "failed", "cancelled"):
                by_state.add_metric([state], totals.get(state, 0))
            yield by_state
            yield GaugeMetricFamily("afterwork_queue_depth", "Tasks queued and due",
                                    value=console.tasks.count_pending(time.time()))
            now = time.time()
            alive = sum(1 for r in console.tasks.runners() if r.alive(now))
            yield GaugeMetricFamily("afterwork_runners_alive", "Runners with a recent heartbeat",
                                    value=alive)

    registry.register(StoreCollector())

    async def metrics(request: Request) -> Response:
        if (refused := await deny(console.settings, request, feature="metrics")) is not None:
            return refused
        body = await reads.run(generate_latest, registry)
        return Response(body, media_type="text/plain; version=0.0.4")

    return [Route(f"{console.settings.dashboard_prefix}/metrics", metrics, methods=["GET"])]
