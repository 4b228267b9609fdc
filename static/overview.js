/* Overview (leads): team figures and charts from GET /api/metrics, and the file operations
 * (sync, auto-create, check) with a progress indicator and a result summary. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;
  const STATUSES = S.config.statuses;
  const DONE = ["completed", "reviewed"];
  const SVG = "http://www.w3.org/2000/svg";
  let displayNames = new Map();  // not an object: a username such as "toString" is just a key

  // ------------------------------------------------------------------ figures and charts

  function setStat(name, text) {
    document.querySelectorAll('[data-stat="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function renderTotals(m) {
    const t = m.totals;
    setStat("batches", S.fmtNumber(t.batches));
    setStat("percent", S.fmtPercent(m.progress.percent));
    setStat("done", S.t("%(done)s of %(total)s completed or reviewed", { done: S.fmtNumber(m.progress.done), total: S.fmtNumber(m.progress.total) }));
    document.querySelector('[data-stat-bar="percent"]').style.width = Math.min(100, m.progress.percent) + "%";
    setStat("masks", S.fmtNumber(t.masks));
    setStat("images", S.tn("for %(n)s image", "for %(n)s images", t.images, { n: S.fmtNumber(t.images) }));
    setStat("linked_files", S.fmtNumber(t.linked_files));
    setStat("files", S.tn("of %(n)s mask file", "of %(n)s mask files", t.files, { n: S.fmtNumber(t.files) }));
    setStat("unlinked_files", S.fmtNumber(t.unlinked_files));
    document.getElementById("metrics-updated").textContent = S.t("Figures as of %(time)s", { time: S.fmtDate(m.generated_at) });
  }

  function barRow(label, value, max, text, status) {
    const width = max > 0 ? (100 * value) / max : 0;
    return h("div", { class: "bar-row" },
      h("span", { class: "bar-label" }, label),
      h("span", { class: "bar-track", "aria-hidden": "true" },
        h("span", { class: "bar-fill s-" + status, style: "width:" + width.toFixed(2) + "%" })),
      h("span", { class: "bar-value" }, text));
  }

  function renderStatusChart(m) {
    const box = S.clear(document.getElementById("chart-status"));
    const total = m.totals.batches;
    if (!total) { box.appendChild(h("p", { class: "empty" }, t("No batches yet."))); return; }
    const max = Math.max.apply(null, STATUSES.map(function (s) { return m.by_status[s] || 0; }));
    STATUSES.forEach(function (status) {
      const n = m.by_status[status] || 0;
      const pct = total ? Math.round((1000 * n) / total) / 10 : 0;
      box.appendChild(barRow(S.statusLabel(status), n, max, S.fmtNumber(n) + " (" + S.fmtPercent(pct) + ")", status));
    });
  }

  function renderAssigneeChart(m) {
    const legend = S.clear(document.getElementById("chart-assignee-legend"));
    const box = S.clear(document.getElementById("chart-assignee"));
    if (!m.by_assignee.length) {
      box.appendChild(h("p", { class: "empty" }, t("No batches are assigned yet. Assign some on the Batches page.")));
      return;
    }
    const shown = STATUSES.filter(function (s) { return s !== "pending"; });
    shown.forEach(function (s) {
      legend.appendChild(h("span", { class: "legend-item" }, h("span", { class: "swatch s-" + s, "aria-hidden": "true" }), S.statusLabel(s)));
    });
    m.by_assignee.forEach(function (row) {
      const total = shown.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const done = DONE.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const track = h("span", { class: "bar-track stacked", role: "img",
        "aria-label": shown.map(function (s) { return S.statusLabel(s) + " " + S.fmtNumber(row[s] || 0); }).join(", ") });
      shown.forEach(function (s) {
        const n = row[s] || 0;
        if (!n) return;
        track.appendChild(h("span", { class: "bar-fill s-" + s, title: S.statusLabel(s) + ": " + S.fmtNumber(n),
          style: "width:" + ((100 * n) / total).toFixed(2) + "%" }));
      });
      const pct = total ? Math.round((100 * done) / total) : 0;
      box.appendChild(h("div", { class: "bar-row" },
        h("span", { class: "bar-label", title: row.assignee }, displayNames.get(row.assignee) || row.assignee),
        track,
        h("span", { class: "bar-value" }, t("%(done)s / %(total)s done (%(percent)s)", { done: S.fmtNumber(done), total: S.fmtNumber(total), percent: S.fmtPercent(pct) }))));
    });
  }

  /* A YYYY-MM-DD day of the chart in the page's language ("Mar 5" / "5 mar"; short: the axis). */
  function fmtDay(day, short) {
    const date = new Date(day + "T00:00:00Z");
    if (isNaN(date.getTime())) return day;
    return date.toLocaleDateString(S.locale, short ? { month: "numeric", day: "numeric", timeZone: "UTC" }
                                                   : { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderDaysChart(m) {
    const box = S.clear(document.getElementById("chart-days"));
    const days = m.completed_per_day;
    const total = days.reduce(function (sum, d) { return sum + d.n; }, 0);
    const max = Math.max(1, Math.max.apply(null, days.map(function (d) { return d.n; })));
    const W = 720, H = 180, left = 34, bottom = 24, top = 10, right = 6;
    const plotW = W - left - right, plotH = H - top - bottom;
    const step = plotW / days.length;
    let busiest = days[0];
    days.forEach(function (d) { if (d.n > busiest.n) busiest = d; });
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "days-svg", role: "img",
      "aria-label": total
        ? tn("%(n)s batch completed in the last 30 days; busiest day %(day)s (%(busiest)s).", "%(n)s batches completed in the last 30 days; busiest day %(day)s (%(busiest)s).", total,
             { n: S.fmtNumber(total), day: fmtDay(busiest.date), busiest: S.fmtNumber(busiest.n) })
        : t("No batch was completed in the last 30 days.") });
    [0, 0.5, 1].forEach(function (f) {
      const y = top + plotH - f * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" },
        S.fmtNumber(Math.round(f * max * 10) / 10)));
    });
    days.forEach(function (d, i) {
      const barH = (d.n / max) * plotH;
      const x = left + i * step + step * 0.15;
      const rect = svg("rect", { x: x.toFixed(1), y: (top + plotH - barH).toFixed(1), width: (step * 0.7).toFixed(1),
        height: Math.max(barH, d.n ? 1 : 0).toFixed(1), rx: 2, class: "day-bar" });
      rect.appendChild(svg("title", {}, t("%(day)s: %(n)s completed", { day: fmtDay(d.date), n: S.fmtNumber(d.n) })));
      chart.appendChild(rect);
      if (i % 5 === 0 || i === days.length - 1) {
        chart.appendChild(svg("text", { x: (left + i * step + step / 2).toFixed(1), y: H - 6, "text-anchor": "middle", class: "axis" },
          fmtDay(d.date, true)));
      }
    });
    box.appendChild(chart);
    box.appendChild(h("p", { class: "muted small" }, total
      ? tn("%(n)s batch completed in the last 30 days; busiest day %(day)s (%(busiest)s).", "%(n)s batches completed in the last 30 days; busiest day %(day)s (%(busiest)s).", total,
           { n: S.fmtNumber(total), day: fmtDay(busiest.date), busiest: S.fmtNumber(busiest.n) })
      : t("No batch was completed in the last 30 days.")));
  }

  async function loadMetrics() {
    const slot = document.getElementById("overview-error");
    try {
      const m = await S.api("GET", "/api/metrics");
      renderTotals(m);
      renderStatusChart(m);
      renderAssigneeChart(m);
      renderDaysChart(m);
      S.showMessage(slot, null, null);
      document.getElementById("stats").setAttribute("data-loaded", "true");
    } catch (err) {
      S.showMessage(slot, "error", t("Could not load the figures: %(reason)s", { reason: err.message }));
    }
  }

  async function loadNames() {
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      displayNames = new Map(users.map(function (u) { return [u.username, u.display_name]; }));
    } catch (err) { displayNames = new Map(); }
  }

  // ------------------------------------------------------------------ file operations

  const OPS = {
    sync: { method: "POST", url: "/api/sync-batch-files", job: "sync", title: t("Sync files"),
            working: t("Linking unlinked mask files to their batches…"),
            progress: "%(done)s of %(total)s files (%(percent)s)" },
    auto_create: { method: "POST", url: "/api/auto-create-batches", job: "auto_create", title: t("Auto-create batches"),
                   working: t("Creating the batches that files name but that do not exist…"),
                   progress: "%(done)s of %(total)s batches (%(percent)s)" },
    check: { method: "GET", url: "/api/check-mongo-files?limit=100", job: null, title: t("Check files"),
             working: t("Auditing the mask files…") },
  };
  const buttons = Array.from(document.querySelectorAll("[data-op]"));
  const progressBox = document.getElementById("op-progress");
  const progressBar = document.getElementById("op-progress-bar");
  const progressText = document.getElementById("op-progress-text");
  const resultBox = document.getElementById("op-result");

  function setBusy(op) {
    buttons.forEach(function (b) { b.disabled = !!op; });
    progressBox.hidden = !op;
    if (op) {
      progressBar.removeAttribute("value");  // indeterminate until the job reports its progress
      progressBar.removeAttribute("max");
      progressText.textContent = op.working;
      resultBox.setAttribute("aria-busy", "true");
    } else {
      resultBox.removeAttribute("aria-busy");
    }
  }

  function showJobProgress(op, job) {
    const p = job.progress || {};
    if (p.total) {
      progressBar.max = p.total;
      progressBar.value = p.done || 0;
      progressText.textContent = op.working + " " + t(op.progress, { done: S.fmtNumber(p.done || 0), total: S.fmtNumber(p.total),
        percent: S.fmtPercent(Math.round((100 * (p.done || 0)) / p.total)) });
    } else {
      progressText.textContent = op.working;
    }
  }

  /* While the request is pending, poll the latest job of this kind for its progress. */
  function startPolling(op) {
    let stopped = false;
    let timer = null;
    async function tick() {
      try {
        const data = await S.api("GET", "/api/jobs?kind=" + op.job + "&limit=1");
        const job = data.items[0];
        if (!stopped && job && job.state === "running") showJobProgress(op, job);
      } catch (err) { /* the main request reports errors */ }
      if (!stopped) timer = window.setTimeout(tick, 400);
    }
    timer = window.setTimeout(tick, 150);
    return function stop() { stopped = true; window.clearTimeout(timer); };
  }

  /* Another request's job is running: follow it until it ends, then return its result. */
  async function waitForJob(op, jobId) {
    for (;;) {
      const job = await S.api("GET", "/api/jobs/" + encodeURIComponent(jobId));
      if (job.state !== "running") {
        if (job.state === "failed") throw new S.ApiError(t("The running “%(job)s” job failed: %(reason)s.", { job: op.title, reason: job.error || t("unknown error") }), 500);
        return job.result;
      }
      showJobProgress(op, job);
      await new Promise(function (resolve) { window.setTimeout(resolve, 500); });
    }
  }


  /* A titled list of examples; long lists start folded so the summary stays readable. */
  function examples(title, items, total, hint) {
    const shown = items.slice(0, 20);
    return h("details", { class: "result-section", open: total <= 10 },
      h("summary", null, h("strong", null, title + " (" + S.fmtNumber(total) + ")")),
      hint ? h("p", { class: "muted small" }, hint) : null,
      shown.length ? h("ul", { class: "examples" }, shown.map(function (x) { return h("li", null, h("code", null, x)); })) : null,
      total > shown.length ? h("p", { class: "muted small" }, t("… and %(n)s more.", { n: S.fmtNumber(total - shown.length) })) : null);
  }

  /* A translated sentence whose %(name)s placeholders become nodes (e.g. the <strong> figures). */
  function fill(text, nodes) {
    const out = [];
    let last = 0;
    text.replace(/%\((\w+)\)s/g, function (whole, name, at) {
      out.push(text.slice(last, at), nodes[name] !== undefined ? nodes[name] : whole);
      last = at + whole.length;
      return whole;
    });
    out.push(text.slice(last));
    return out;
  }

  function fact(name, n) { return h("strong", { "data-result": name }, S.fmtNumber(n)); }

  function groupsOf(groups, files) {
    return t("%(groups)s of identical files (%(files)s).", {
      groups: tn("%(n)s group", "%(n)s groups", groups, { n: S.fmtNumber(groups) }),
      files: tn("%(n)s file", "%(n)s files", files, { n: S.fmtNumber(files) }) });
  }

  function summarySync(r) {
    const parts = [h("p", { class: "result-head" }, h("strong", null, t("Sync finished")), " " + t("in %(duration)s.", { duration: S.fmtDuration(r.duration_ms) }))];
    parts.push(h("ul", { class: "result-facts" },
      h("li", null, fill(tn("Scanned %(n)s unlinked file.", "Scanned %(n)s unlinked files.", r.files_scanned), { n: fact("files_scanned", r.files_scanned) })),
      h("li", null, fill(t("Linked %(files)s to %(batches)s."), {
        files: [fact("files_linked", r.files_linked), " ", tn("file", "files", r.files_linked)],
        batches: [fact("batches_updated", r.batches_updated), " ", tn("batch", "batches", r.batches_updated)] })),
      h("li", null, fill(t("%(unmatched)s; %(missing)s."), {
        unmatched: fill(tn("%(n)s file matches no batch", "%(n)s files match no batch", r.unmatched), { n: fact("unmatched", r.unmatched) }),
        missing: fill(tn("%(n)s batch named by files does not exist", "%(n)s batches named by files do not exist", r.missing_batches || 0),
                      { n: fact("missing_batches", r.missing_batches || 0) }) }))));
    if (r.unmatched) {
      parts.push(examples(t("Files that match no batch"), r.unmatched_examples || [], r.unmatched,
        t("Their names contain no batch token (e.g. batch_0007 or b7). Rename them or upload them to a batch.")));
    }
    if (r.missing_batches) {
      parts.push(examples(t("Batches named by files but missing"), r.missing_batch_examples || [], r.missing_batches,
        t("Use “Auto-create batches” to create them, then sync again.")));
    }
    if (!r.files_scanned) parts.push(h("p", null, t("Every mask file is already linked.")));
    return parts;
  }

  function summaryAutoCreate(r) {
    const parts = [h("p", { class: "result-head" }, h("strong", null, t("Auto-create finished."))),
      h("ul", { class: "result-facts" },
        h("li", null, fill(tn("Created %(n)s new pending batch.", "Created %(n)s new pending batches.", r.created), { n: fact("created", r.created) })),
        h("li", null, tn("%(n)s batch named by files already existed.", "%(n)s batches named by files already existed.", r.skipped_existing,
                         { n: S.fmtNumber(r.skipped_existing) })))];
    if (r.limited) {
      parts.push(h("p", { class: "notice warn" }, tn("Stopped at the per-run limit: %(n)s more batch to create. Run it again.",
        "Stopped at the per-run limit: %(n)s more batches to create. Run it again.", r.missing_remaining, { n: S.fmtNumber(r.missing_remaining) })));
    }
    if (r.created) parts.push(h("p", null, t("Run “Sync files” to link their files to the new batches.")));
    else if (!r.limited) parts.push(h("p", null, t("No batch was missing.")));
    return parts;
  }

  function summaryCheck(r) {
    const dupFiles = r.duplicates.reduce(function (sum, d) { return sum + (d.count || d.files.length); }, 0);
    const parts = [h("p", { class: "result-head" }, h("strong", null, t("Check finished."))),
      h("ul", { class: "result-facts" },
        h("li", null, fill(tn("%(n)s mask file: %(linked)s linked, %(unlinked)s unlinked.", "%(n)s mask files: %(linked)s linked, %(unlinked)s unlinked.", r.files_total),
          { n: fact("files_total", r.files_total), linked: fact("linked", r.linked), unlinked: fact("unlinked", r.unlinked) })),
        h("li", null, groupsOf(r.duplicates.length, dupFiles))),
    ];
    const unmatchedTotal = r.unmatched_total !== undefined ? r.unmatched_total : r.unmatched.length;
    const missingTotal = r.missing_batches_total !== undefined ? r.missing_batches_total : r.missing_batches.length;
    if (unmatchedTotal) parts.push(examples(t("Unlinked files that match no batch"), r.unmatched, unmatchedTotal));
    if (missingTotal) parts.push(examples(t("Batches named by files but missing"), r.missing_batches, missingTotal,
      t("“Auto-create batches” creates them.")));
    if (r.batches_without_masks.length) {
      parts.push(examples(t("Batches without masks"), r.batches_without_masks, r.batches_without_masks.length,
        r.batches_without_masks.length >= 100 ? t("Showing the first 100 by id.") : null));
    }
    if (r.duplicates.length) {
      parts.push(h("div", { class: "result-section" },
        h("h4", null, tn("Identical files (%(n)s group)", "Identical files (%(n)s groups)", r.duplicates.length, { n: S.fmtNumber(r.duplicates.length) })),
        h("ul", { class: "examples" }, r.duplicates.slice(0, 20).map(function (d) {
          return h("li", null, h("code", { title: d.sha256 }, d.sha256.slice(0, 12) + "…"), " × " + (d.count || d.files.length) + ": ",
            d.files.map(function (f) { return f.filename || "(no name)"; }).join(", "));
        }))));
    }
    if (!unmatchedTotal && !missingTotal && !r.duplicates.length) parts.push(h("p", null, t("No problems found.")));
    return parts;
  }

  const SUMMARIES = { sync: summarySync, auto_create: summaryAutoCreate, check: summaryCheck };

  async function runOp(name) {
    const op = OPS[name];
    setBusy(op);
    S.showMessage(resultBox, null, null);
    const stopPolling = op.job ? startPolling(op) : function () {};
    let result = null;
    try {
      try {
        result = await S.api(op.method, op.url);
      } catch (err) {
        if (err.status === 409 && err.body && err.body.job_id) {
          progressText.textContent = t("Another “%(job)s” job is running; waiting for it to finish…", { job: op.title });
          result = await waitForJob(op, err.body.job_id);
        } else {
          throw err;
        }
      }
      stopPolling();
      clearResult();
      resultBox.appendChild(h("div", { class: "notice ok result", role: "status", "data-op-result": name }, SUMMARIES[name](result)));
      if (name !== "check") {
        await loadMetrics();
        // Other workers see the write within about a second: refresh once more then.
        window.setTimeout(loadMetrics, 1500);
      }
    } catch (err) {
      stopPolling();
      S.showMessage(resultBox, "error", t("%(job)s failed: %(reason)s", { job: op.title, reason: err.message }));
    } finally {
      setBusy(null);
    }
  }

  function clearResult() { S.clear(resultBox); }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { runOp(button.getAttribute("data-op")); });
  });

  loadNames().then(loadMetrics);
})();
