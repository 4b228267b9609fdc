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
  const t = S.t, tn = S.tn;
  let timer = null;

  function files(n) { return tn("%(n)s file", "%(n)s files", n, { n: S.fmtNumber(n) }); }
  function batches(n) { return tn("%(n)s batch", "%(n)s batches", n, { n: S.fmtNumber(n) }); }

  /* One line saying what a finished job did. */
  function summary(job) {
    const r = job.result;
    if (job.state === "failed") return t("Error: %(reason)s", { reason: S.jobError(job) });
    if (!r) return job.state === "cancelled" ? t("Cancelled before it began.") : "";
    const cancelled = job.state === "cancelled";
    switch (job.kind) {
      case "sync": {
        const params = { files: files(r.files_linked || 0), batches: batches(r.batches_updated || 0),
          scanned: S.fmtNumber(r.files_scanned || 0), unmatched: S.fmtNumber(r.unmatched || 0),
          missing: S.fmtNumber(r.missing_batches || 0) };
        return cancelled
          ? t("Cancelled; so far linked %(files)s to %(batches)s; scanned %(scanned)s, %(unmatched)s match no batch, %(missing)s missing batches.", params)
          : t("Linked %(files)s to %(batches)s; scanned %(scanned)s, %(unmatched)s match no batch, %(missing)s missing batches.", params);
      }
      case "auto_create": {
        const params = { batches: batches(r.created || 0) };
        let text = cancelled ? t("Cancelled; so far created %(batches)s.", params) : t("Created %(batches)s.", params);
        if (r.limited) text += " " + t("Limited: run it again for the rest.");
        return text;
      }
      case "check":
        return t("%(files)s, %(unlinked)s unlinked, %(groups)s of identical files, %(orphans)s with orphaned chunks.", {
          files: files(r.files_total || 0), unlinked: S.fmtNumber(r.unlinked || 0),
          groups: tn("%(n)s group", "%(n)s groups", (r.duplicates || []).length, { n: S.fmtNumber((r.duplicates || []).length) }), orphans: files(r.orphan_chunk_files || 0) });
      case "import": {
        const params = { batches: batches(r.imported || 0), inserted: S.fmtNumber(r.inserted || 0) };
        return cancelled ? t("Cancelled; so far imported %(batches)s (%(inserted)s new).", params)
          : t("Imported %(batches)s (%(inserted)s new).", params);
      }
      default:
        return "";
    }
  }

  function progressCell(job) {
    if (job.state !== "running" && job.state !== "queued") {
      const p = job.progress || {};
      return h("span", { class: "muted" }, p.total !== null && p.total !== undefined
        ? t("%(done)s of %(total)s %(unit)s", { done: S.fmtNumber(p.done), total: S.fmtNumber(p.total), unit: S.jobUnit(p.unit, p.total) })
        : "—");
    }
    const bar = h("progress", { class: "job-bar", "aria-label": t("Progress") });
    S.setJobBar(bar, job);
    return h("div", null, bar, h("div", { class: "small" }, S.jobProgressText(job)));
  }

  async function cancel(job, button) {
    button.disabled = true;
    try {
      await S.api("POST", "/api/jobs/" + encodeURIComponent(job.id) + "/cancel");
    } catch (err) {
      if (err.status !== 409) S.showMessage(errorSlot, "error", t("Could not cancel: %(reason)s", { reason: err.message }));
    }
    load();
  }

  function row(job) {
    const active = job.state === "running" || job.state === "queued";
    let action = null;
    if (active) {
      action = h("button", { type: "button", class: "secondary small", "data-cancel": job.id,
        disabled: job.cancel_requested ? "disabled" : null }, job.cancel_requested ? t("Cancelling…") : t("Cancel"));
      action.addEventListener("click", function () { cancel(job, action); });
    }
    return h("tr", { "data-job-id": job.id, "data-state": job.state },
      h("td", null, h("strong", null, S.jobTitle(job.kind)),
        job.attempts > 1 ? h("div", { class: "muted small" }, t("resumed, attempt %(n)s", { n: S.fmtNumber(job.attempts) })) : null),
      h("td", null, h("span", { class: "job-state s-" + job.state }, S.jobStateLabel(job.state))),
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
      if (!data.items.length) body.appendChild(h("tr", null, h("td", { colspan: "8", class: "empty" }, t("No jobs yet."))));
      data.items.forEach(function (job) {
        body.appendChild(row(job));
        if (job.state === "running" || job.state === "queued") active = true;
      });
      S.showMessage(errorSlot, null, null);
    } catch (err) {
      S.showMessage(errorSlot, "error", t("Could not load the jobs: %(reason)s", { reason: err.message }));
      active = true;  // try again
    }
    timer = window.setTimeout(load, active ? 1000 : 10000);
  }

  kindSelect.addEventListener("change", load);
  stateSelect.addEventListener("change", load);
  document.getElementById("job-filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  load();
})();
