"""OpenTelemetry (needs `pip install 'afterwork[otel]'`): an `afterwork.enqueue` span when a
task is stored, and an `afterwork.run` span around each execution, linked to the trace of the
request that scheduled it (its W3C trace context travels in the task's `meta`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from .._errors import ConfigurationError
from .._events import EventKind, Events, TaskEvent
from .._models import TaskRecord


def install_tracing(events: Events) -> None:
    try:
        from opentelemetry import propagate, trace
    except ImportError as exc:
        raise ConfigurationError("Afterwork(tracing=True) needs OpenTelemetry: "
                                 "pip install 'afterwork[otel]'") from exc
    tracer = trace.get_tracer("afterwork")

    def carry() -> dict[str, Any]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return {"trace": carrier} if carrier else {}

    def on_enqueued(event: TaskEvent) -> None:
        if event.kind is EventKind.ENQUEUED:
            with tracer.start_as_current_span("afterwork.enqueue", attributes={
                    "afterwork.task.id": event.task.id, "afterwork.task.name": event.task.name}):
                pass

    @contextlib.contextmanager
    def run_span(record: TaskRecord) -> Iterator[None]:
        carrier = json.loads(record.meta).get("trace", {}) if record.meta else {}
        links = []
        if carrier:
            context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
            links.append(trace.Link(context))
        attributes = {"afterwork.task.id": record.id, "afterwork.task.name": record.name}
        with tracer.start_as_current_span("afterwork.run", links=links, attributes=attributes):
            yield

    events.enqueue_hooks.append(carry)
    events.subscribe(on_enqueued)
    events.around_task.append(run_span)
