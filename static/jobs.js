/* Jobs (leads): recent background jobs from GET /api/jobs, refreshed while any of them runs,
 * with a Cancel button for the ones still queued or running. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const body = document.getElementById("jobs-body");
  const errorSlot = document.getElementById("jobs-error");
  const kindSelect = document.getElementById("filter-kind");
  const stateSelect = document.getElementById("filter-state");
  const STATE_LABELS = { queued: "Queued", running: "Running", done: "Done", failed: "Failed", cancelled: "Cancelled" };
  let timer = null;

  function plural(n, word, many) { return S.fmtNumber(n) + " " + (n === 1 ? word : (many || word + "s")); }

  /* One line saying what a finished job did. */
  function summary(job) {
    const r = job.result;
    if (job.state === "failed") return "Error: " + (job.error || "unknown");
    if (!r) return job.state === "cancelled" ? "Cancelled before it began." : "";
    const prefix = job.state === "cancelled" ? "Cancelled; so far " : "";
    switch (job.kind) {
      case "sync":
        return prefix + "linked " + plural(r.files_linked || 0, "file") + " to " + plural(r.batches_updated || 0, "batch", "batches") +
          "; scanned " + S.fmtNumber(r.files_scanned || 0) + ", " + S.fmtNumber(r.unmatched || 0) + " match no batch, " +
          plural(r.missing_batches || 0, "missing batch", "missing batches") + ".";
      case "auto_create":
        return prefix + "created " + plural(r.created || 0, "batch", "batches") + (r.limited ? " (limited: run again for the rest)" : "") + ".";
      case "check":
        return S.fmtNumber(r.files_total) + " files, " + S.fmtNumber(r.unlinked) + " unlinked, " +
          plural((r.duplicates || []).length, "duplicate group") + ", " + plural(r.orphan_chunk_files || 0, "orphan chunk file") + ".";
      case "import":
        return prefix + S.fmtNumber(r.imported || 0) + " batches imported (" + S.fmtNumber(r.inserted || 0) + " new).";
      default:
        return "";
    }
  }

  function progressCell(job) {
    if (job.state !== "running" && job.state !== "queued") {
      const p = job.progress || {};
      return h("span", { class: "muted" }, p.total !== null && p.total !== undefined
        ? S.fmtNumber(p.done) + " of " + S.fmtNumber(p.total) + " " + (p.unit || "") : "—");
    }
    const bar = h("progress", { class: "job-bar", "aria-label": "Progress" });
    S.setJobBar(bar, job);
    return h("div", null, bar, h("div", { class: "small" }, S.jobProgressText(job)));
  }

  async function cancel(job, button) {
    button.disabled = true;
    try {
      await S.api("POST", "/api/jobs/" + encodeURIComponent(job.id) + "/cancel");
    } catch (err) {
      if (err.status !== 409) S.showMessage(errorSlot, "error", "Could not cancel: " + err.message);
    }
    load();
  }

  function row(job) {
    const active = job.state === "running" || job.state === "queued";
    let action = null;
    if (active) {
      action = h("button", { type: "button", class: "secondary small", "data-cancel": job.id,
        disabled: job.cancel_requested ? "disabled" : null }, job.cancel_requested ? "Cancelling…" : "Cancel");
      action.addEventListener("click", function () { cancel(job, action); });
    }
    return h("tr", { "data-job-id": job.id, "data-state": job.state },
      h("td", null, h("strong", null, S.JOB_TITLES[job.kind] || job.kind),
        job.attempts > 1 ? h("div", { class: "muted small" }, "resumed, attempt " + job.attempts) : null),
      h("td", null, h("span", { class: "job-state s-" + job.state }, STATE_LABELS[job.state] || job.state)),
      h("td", null, progressCell(job)),
      h("td", null, job.started_by || "—"),
      h("td", null, S.timeEl(job.created_at)),
      h("td", null, S.timeEl(job.finished_at)),
      h("td", { class: "small" }, summary(job)),
      h("td", null, action));
  }

  async function load() {
    window.clearTimeout(timer);
    const params = new URLSearchParams({ limit: "50" });
    if (kindSelect.value) params.set("kind", kindSelect.value);
    if (stateSelect.value) params.set("state", stateSelect.value);
    let active = false;
    try {
      const data = await S.api("GET", "/api/jobs?" + params.toString());
      S.clear(body);
      if (!data.items.length) body.appendChild(h("tr", null, h("td", { colspan: "8", class: "empty" }, "No jobs yet.")));
      data.items.forEach(function (job) {
        body.appendChild(row(job));
        if (job.state === "running" || job.state === "queued") active = true;
      });
      S.showMessage(errorSlot, null, null);
    } catch (err) {
      S.showMessage(errorSlot, "error", "Could not load the jobs: " + err.message);
      active = true;  // try again
    }
    timer = window.setTimeout(load, active ? 1000 : 10000);
  }

  kindSelect.addEventListener("change", load);
  stateSelect.addEventListener("change", load);
  document.getElementById("job-filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  load();
})();
