// afterwork's dashboard: local times, live updates, bulk actions, queue pause, confirmations.
// No library.
"use strict";
(function () {
  const csrf = document.querySelector("meta[name=csrf]").content;

  function localTimes(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      const at = new Date(t.getAttribute("datetime"));
      if (!isNaN(at)) {
        t.textContent = at.toLocaleString();
        t.title = t.getAttribute("datetime").replace("+00:00", " UTC");
      }
    }
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Afterwork-CSRF": csrf},
      body: JSON.stringify(body || {}),
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(data.detail || answer.statusText);
    return data;
  }

  function say(text) {
    const out = document.getElementById("bulk-result");
    if (out) out.textContent = text; else alert(text);
  }

  // Live: one stream per tab; the server shares one read among all tabs.
  const live = document.getElementById("live");
  if (live) {
    const status = document.getElementById("live-status");
    const button = document.getElementById("pause-live");
    let source = null;
    const start = () => {
      source = new EventSource(live.dataset.url);
      source.addEventListener("board", (e) => {
        const parts = JSON.parse(e.data);
        for (const [key, part] of Object.entries(parts)) {
          const el = document.getElementById("live-" + key);
          if (el && el.dataset.mark !== part.mark) {
            // Tasks ticked for a bulk action stay ticked when their list is redrawn.
            const picked = new Set([...el.querySelectorAll("input.pick:checked")].map((b) => b.value));
            el.innerHTML = part.html; el.dataset.mark = part.mark; localTimes(el);
            for (const box of el.querySelectorAll("input.pick")) box.checked = picked.has(box.value);
          }
        }
        status.textContent = "live, updated " + new Date().toLocaleTimeString();
      });
      source.onerror = () => { status.textContent = "reconnecting…"; };
      button.textContent = "Pause live updates";
    };
    const stop = () => {
      source.close(); source = null;
      status.textContent = "paused"; button.textContent = "Resume live updates";
    };
    button.addEventListener("click", () => (source ? stop() : start()));
    start();
  }

  // Bulk actions on the tasks shown, or on all that match the filter.
  document.addEventListener("change", (e) => {
    if (e.target.id === "pick-all") {
      for (const box of document.querySelectorAll("input.pick")) box.checked = e.target.checked;
    }
  });
  for (const button of document.querySelectorAll("button[data-bulk]")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.bulk;
      const all = document.getElementById("all-matching");
      let body;
      if (all && all.checked) {
        body = {action, match: JSON.parse(all.dataset.match)};
      } else {
        const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => b.value);
        if (!ids.length) { say("Select tasks first (or tick “all that match”)."); return; }
        body = {action, ids};
      }
      try {
        const {count} = await post(button.dataset.url, {...body, preview: true});
        if (!count) { say("No task matches."); return; }
        if (!confirm(`${action[0].toUpperCase() + action.slice(1)} ${count} task${count === 1 ? "" : "s"}?`)) return;
        const done = await post(button.dataset.url, body);
        say(`${action}: ${done.done} done` + (done.refused.length ? `, ${done.refused.length} refused (${done.refused[0].detail})` : ""));
        setTimeout(() => location.reload(), 800);
      } catch (err) { say(err.message); }
    });
  }

  // A form that asks first (deleting a task).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!confirm(form.dataset.confirm)) e.preventDefault(); });
  }

  // Pause and resume a queue, run a schedule now (buttons a live update may redraw).
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-post]");
    if (!button) return;
    try { await post(button.dataset.post); location.reload(); } catch (err) { alert(err.message); }
  });

  localTimes(document);
})();
