"""The page that follows a task to its end: a slow report, built in steps in the background.

`GET /report` shows a form; submitting it starts `build_report` and shows a live progress bar
(the status API's Server-Sent Events: `progress` while it runs, `state` when it ends). Once the
report is built the page moves to `/report/{id}`, which shows what the task returned; if it
failed, the page says so and offers to try again. The task is `public_result=True`, so the
page may read its result through the public status endpoint too; its errors stay private.

Environment: REPORT_STEPS (default 8), REPORT_STEP_SECONDS (default 0.5).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
from html import escape
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from afterwork import Afterwork, TaskFailedError, progress, task

SECTIONS = ("inventory", "capacity", "network", "storage", "patches", "backups", "alerts", "costs")


class ReportRequest(BaseModel):
    title: str = Field(default="Fleet report", min_length=1, max_length=100)
    fail_at: int | None = Field(default=None, ge=1)
    """Fail at this step: to see how the page shows a failure."""


class Section(BaseModel):
    name: str
    servers: int
    memory_gb: decimal.Decimal


class Report(BaseModel):
    title: str
    sections: list[Section]
    total_memory_gb: decimal.Decimal
    built_at: dt.datetime


@task(public_result=True, max_attempts=1)
async def build_report(title: str, fail_at: int | None = None) -> Report:
    """A few seconds of work in steps, reporting how far it has got after each."""
    steps = int(os.environ.get("REPORT_STEPS", "8"))
    pause = float(os.environ.get("REPORT_STEP_SECONDS", "0.5"))
    sections = []
    for step in range(1, steps + 1):
        name = SECTIONS[(step - 1) % len(SECTIONS)]
        progress(step - 1, total=steps, note=f"building {name}")
        await asyncio.sleep(pause)
        if step == fail_at:
            raise RuntimeError(f"the {name} source did not answer")
        sections.append(Section(name=name, servers=3 * step,
                                memory_gb=decimal.Decimal("31.25") * step))
    progress(steps, total=steps, note="done")
    return Report(title=title, sections=sections,
                  total_memory_gb=sum((s.memory_gb for s in sections), decimal.Decimal()),
                  built_at=dt.datetime.now(dt.timezone.utc))


STYLE = """body{font:16px system-ui,sans-serif;margin:32px;max-width:720px}progress{width:100%;
height:22px}#note{color:#555}.failed{color:#c62828}td,th{padding:4px 12px;text-align:left}"""

FORM_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>Build a report</title>
<style>{STYLE}</style></head><body><h1>Build a report</h1>
<form id="f">title <input name="title" value="Fleet report">
<label><input type="checkbox" name="fail" id="fail"> fail at step 3</label>
<button id="build">build</button></form>
<div id="run" hidden><progress id="bar" max="1" value="0"></progress><p id="note">starting</p></div>
<p id="failed" class="failed" hidden></p><button id="again" hidden>try again</button>
<script>
const form = document.getElementById("f"), bar = document.getElementById("bar");
const note = document.getElementById("note"), failed = document.getElementById("failed");
const again = document.getElementById("again");
function show(p) {{
  if (!p) return;
  bar.max = p.total || 1; bar.value = p.done;
  note.textContent = `${{p.done}} of ${{p.total}}: ${{p.note}}`;
}}
async function start(title, failAt) {{
  failed.hidden = again.hidden = true; document.getElementById("run").hidden = false;
  bar.value = 0; note.textContent = "starting";
  const r = await fetch("/report", {{method: "POST", headers: {{"content-type": "application/json"}},
    body: JSON.stringify({{title, fail_at: failAt}})}});
  const answer = await r.json();
  if (!r.ok) {{ failed.textContent = JSON.stringify(answer.detail); failed.hidden = false; return; }}
  const events = new EventSource(`/afterwork/api/tasks/${{answer.task}}/events`);
  events.addEventListener("progress", (m) => show(JSON.parse(m.data)));
  events.addEventListener("state", (m) => {{
    const t = JSON.parse(m.data);
    show(t.progress);
    if (t.state === "succeeded") {{ events.close(); location.href = `/report/${{t.id}}`; }}
    if (t.state === "failed" || t.state === "cancelled") {{
      events.close();
      const at = t.progress ? ` at step ${{t.progress.done + 1}} of ${{t.progress.total}}` : "";
      failed.textContent = `The report could not be built${{at}}. Nothing was lost: try again.`;
      failed.hidden = again.hidden = false;
    }}
  }});
}}
form.onsubmit = (e) => {{
  e.preventDefault();
  start(form.title.value, document.getElementById("fail").checked ? 3 : null);
}};
again.onclick = () => start(form.title.value, null);
</script></body></html>"""


def report_router(aw: Afterwork) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/report", response_class=HTMLResponse)
    def report_form() -> str:
        return FORM_PAGE

    @router.post("/report", include_in_schema=True)
    def start_report(wanted: ReportRequest) -> dict[str, str]:
        return {"task": aw.defer(build_report, wanted.title, fail_at=wanted.fail_at).id}

    @router.get("/report/{task_id}", response_class=HTMLResponse)
    async def report_page(task_id: str) -> str:
        try:
            report: Any = await aw.result(task_id, timeout=10)
        except TaskFailedError:
            raise HTTPException(409, "that report could not be built: start another") from None
        if not isinstance(report, Report):
            raise HTTPException(404, "no report with that id")
        rows = "".join(f"<tr><td>{escape(s.name)}</td><td>{s.servers}</td><td>{s.memory_gb}</td></tr>"
                       for s in report.sections)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(report.title)}"
                f"</title><style>{STYLE}</style></head><body><h1 id='title'>{escape(report.title)}</h1>"
                f"<p>built {report.built_at:%Y-%m-%d %H:%M:%S} UTC; memory in all: "
                f"<b id='total'>{report.total_memory_gb} GB</b></p><table><tr><th>section</th>"
                f"<th>servers</th><th>memory (GB)</th></tr>{rows}</table>"
                "<p><a href='/report'>another report</a></p></body></html>")

    return router
