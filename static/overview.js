/* Overview (leads): team figures and charts from GET /api/metrics, and the file operations
 * (sync, auto-create, check) with a progress indicator and a result summary. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const STATUSES = S.config.statuses;
  const DONE = ["completed", "reviewed"];
  const SVG = "http://www.w3.org/2000/svg";
  let displayNames = {};

  // ------------------------------------------------------------------ figures and charts
  // Two notions of progress, each named where shown: "batches done" counts batches by status
  // (completed or reviewed); "masks per image" counts mask files against images.
  // The figures refresh every REFRESH_MS while the page is visible; after a failure they wait
  // longer each time (up to MAX_BACKOFF_MS). Until they load, nothing looks like data.

  const REFRESH_MS = 30000;
  const MAX_BACKOFF_MS = 300000;
  const statsBox = document.getElementById("stats");
  const opButtons = document.getElementById("op-buttons");
  const errorSlot = document.getElementById("overview-error");

  function setStat(name, text) {
    document.querySelectorAll('[data-stat="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function listUrl(filters) {
    const q = new URLSearchParams(filters);
    return "/batches" + (q.toString() ? "?" + q.toString() : "");
  }

  function percentOf(part, whole) { return whole ? Math.round((1000 * part) / whole) / 10 : 0; }

  function renderTotals(m) {
    const t = m.totals;
    setStat("batches", S.fmtNumber(t.batches));
    setStat("percent", m.progress.percent + "%");
    setStat("done", S.fmtNumber(m.progress.done) + " of " + S.fmtNumber(m.progress.total) + " batches completed or reviewed");
    const meter = document.querySelector('[data-stat-bar="percent"]');
    meter.parentNode.classList.remove("unknown");
    meter.style.width = Math.min(100, m.progress.percent) + "%";
    setStat("masks", percentOf(Math.min(t.masks, t.images), t.images) + "%");
    setStat("images", S.fmtNumber(t.masks) + " masks for " + S.fmtNumber(t.images) + " images");
    setStat("linked_files", S.fmtNumber(t.linked_files));
    setStat("files", "of " + S.fmtNumber(t.files) + " mask files");
    setStat("unlinked_files", S.fmtNumber(t.unlinked_files));
    statsBox.querySelectorAll(".stat").forEach(function (el) { el.setAttribute("data-state", "known"); });
    document.getElementById("metrics-updated").textContent = "Figures as of " + S.fmtDate(m.generated_at) + "; they refresh on their own.";
  }

  /* Loading or failed: every figure shows that it is unknown, and the file operations wait. */
  function renderUnknown(text) {
    ["batches", "percent", "masks", "linked_files", "unlinked_files"].forEach(function (name) { setStat(name, text); });
    ["images", "files"].forEach(function (name) { setStat(name, ""); });
    setStat("done", "by status: completed or reviewed");
    const meter = document.querySelector('[data-stat-bar="percent"]');
    meter.style.width = "0";
    meter.parentNode.classList.add("unknown");
    statsBox.querySelectorAll(".stat").forEach(function (el) { el.setAttribute("data-state", "unknown"); });
    ["chart-status", "chart-assignee", "chart-days"].forEach(function (id) {
      S.clear(document.getElementById(id)).appendChild(h("p", { class: "chart-state" + (text === "—" ? " error" : "") },
        text === "—" ? "Not available: the figures could not be loaded." : "Loading…"));
    });
    S.clear(document.getElementById("chart-assignee-legend"));
  }

  function barRow(label, value, max, text, status, href) {
    const width = max > 0 ? (100 * value) / max : 0;
    return h("a", { class: "bar-row", href: href, "data-status": status, "aria-label": label + ": " + text + ". Show these batches" },
      h("span", { class: "bar-label" }, label),
      h("span", { class: "bar-track", "aria-hidden": "true" },
        h("span", { class: "bar-fill s-" + status, style: "width:" + width.toFixed(2) + "%" })),
      h("span", { class: "bar-value" }, text));
  }

  function renderStatusChart(m) {
    const box = S.clear(document.getElementById("chart-status"));
    const total = m.totals.batches;
    if (!total) { box.appendChild(h("p", { class: "empty" }, "No batches yet.")); return; }
    const max = Math.max.apply(null, STATUSES.map(function (s) { return m.by_status[s] || 0; }));
    STATUSES.forEach(function (status) {
      const n = m.by_status[status] || 0;
      box.appendChild(barRow(S.statusLabel(status), n, max, S.fmtNumber(n) + " (" + percentOf(n, total) + "%)", status,
        listUrl({ status: status })));
    });
  }

  function renderAssigneeChart(m) {
    const legend = S.clear(document.getElementById("chart-assignee-legend"));
    const box = S.clear(document.getElementById("chart-assignee"));
    if (!m.by_assignee.length) {
      box.appendChild(h("p", { class: "empty" }, "No batches are assigned yet. Assign some on the Batches page."));
      return;
    }
    const shown = STATUSES.filter(function (s) { return s !== "pending"; });
    shown.forEach(function (s) {
      legend.appendChild(h("a", { class: "legend-item", href: listUrl({ status: s }), "data-status": s },
        h("span", { class: "swatch s-" + s, "aria-hidden": "true" }), S.statusLabel(s)));
    });
    m.by_assignee.forEach(function (row) {
      const total = shown.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const done = DONE.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const name = displayNames[row.assignee] || row.assignee;
      const track = h("span", { class: "bar-track stacked" });
      shown.forEach(function (s) {
        const n = row[s] || 0;
        if (!n) return;
        track.appendChild(h("a", { class: "bar-fill s-" + s, href: listUrl({ assignee: row.assignee, status: s }),
          title: S.statusLabel(s) + ": " + n, "aria-label": name + ", " + S.statusLabel(s).toLowerCase() + ": " + n,
          style: "width:" + ((100 * n) / total).toFixed(2) + "%" }));
      });
      box.appendChild(h("div", { class: "bar-row" },
        h("a", { class: "bar-label", title: row.assignee, href: listUrl({ assignee: row.assignee }) }, name),
        track,
        h("span", { class: "bar-value" }, done + " of " + total + " batches done (" + (total ? Math.round((100 * done) / total) : 0) + "%)")));
    });
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Whole-number ticks from 0 to at least `max`: counts of batches have no fractions. */
  function integerTicks(max) {
    const step = Math.max(1, Math.ceil(max / 4));
    const ticks = [];
    for (let v = 0; v < max + step; v += step) ticks.push(v);
    return ticks;
  }

  function renderDaysChart(m) {
    const box = S.clear(document.getElementById("chart-days"));
    const days = m.completed_per_day;
    const total = days.reduce(function (sum, d) { return sum + d.n; }, 0);
    const ticks = integerTicks(Math.max(1, Math.max.apply(null, days.map(function (d) { return d.n; }))));
    const top = ticks[ticks.length - 1];
    const W = 720, H = 180, left = 34, bottom = 24, margin = 10, right = 6;
    const plotW = W - left - right, plotH = H - margin - bottom;
    const step = plotW / days.length;
    let busiest = days[0];
    days.forEach(function (d) { if (d.n > busiest.n) busiest = d; });
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "days-svg", role: "img",
      "aria-label": total + " batches completed in the last 30 days" +
        (total ? "; busiest day " + busiest.date + " with " + busiest.n : "") });
    ticks.forEach(function (v) {
      const y = margin + plotH - (v / top) * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(v)));
    });
    days.forEach(function (d, i) {
      const barH = (d.n / top) * plotH;
      const x = left + i * step + step * 0.15;
      const rect = svg("rect", { x: x.toFixed(1), y: (margin + plotH - barH).toFixed(1), width: (step * 0.7).toFixed(1),
        height: Math.max(barH, d.n ? 1 : 0).toFixed(1), rx: 2, class: "day-bar" });
      rect.appendChild(svg("title", {}, d.date + ": " + d.n + " completed"));
      chart.appendChild(rect);
      if (i % 5 === 0 || i === days.length - 1) {
        chart.appendChild(svg("text", { x: (left + i * step + step / 2).toFixed(1), y: H - 6, "text-anchor": "middle", class: "axis" },
          d.date.slice(5)));
      }
    });
    box.appendChild(chart);
    box.appendChild(h("p", { class: "muted small" }, total
      ? S.fmtNumber(total) + " batches completed in the last 30 days; busiest day " + busiest.date + " (" + busiest.n + ")."
      : "No batch was completed in the last 30 days."));
  }

  let refreshTimer = null;
  let failures = 0;
  let lastLoaded = 0;

  function schedule() {
    window.clearTimeout(refreshTimer);
    if (document.hidden) return;
    const wait = failures ? Math.min(MAX_BACKOFF_MS, REFRESH_MS * Math.pow(2, failures)) : REFRESH_MS;
    refreshTimer = window.setTimeout(function () { loadMetrics(); }, wait);
  }

  /* Fetch and show the figures; `before` (a promise) must settle first, e.g. the display names. */
  async function loadMetrics(before) {
    window.clearTimeout(refreshTimer);
    statsBox.setAttribute("aria-busy", "true");
    try {
      const both = await Promise.all([S.api("GET", "/api/metrics"), before]);
      const m = both[0];
      renderTotals(m);
      renderStatusChart(m);
      renderAssigneeChart(m);
      renderDaysChart(m);
      S.showMessage(errorSlot, null, null);
      statsBox.setAttribute("data-loaded", "true");
      statsBox.setAttribute("data-state", "loaded");
      opButtons.disabled = false;
      failures = 0;
      lastLoaded = Date.now();
    } catch (err) {
      failures += 1;
      // Figures shown before stay, marked by the message; figures never loaded stay unknown.
      if (!lastLoaded) {
        renderUnknown("—");
        statsBox.setAttribute("data-state", "error");
        opButtons.disabled = true;
      }
      S.showMessage(errorSlot, "error", ["Could not load the figures: " + err.message + " ",
        h("button", { type: "button", class: "small", "data-retry": "metrics", onclick: retry }, "Retry")]);
    } finally {
      statsBox.removeAttribute("aria-busy");
      schedule();
    }
  }

  function retry() {
    renderUnknown("…");
    if (!lastLoaded) statsBox.setAttribute("data-state", "loading");
    S.showMessage(errorSlot, "info", "Loading the figures…");
    loadMetrics().then(function () { if (lastLoaded) statsBox.focus(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { window.clearTimeout(refreshTimer); return; }
    if (Date.now() - lastLoaded >= REFRESH_MS) loadMetrics(); else schedule();
  });

  async function loadNames() {
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      displayNames = {};
      users.forEach(function (u) { displayNames[u.username] = u.display_name; });
    } catch (err) { displayNames = {}; }
  }

  // ------------------------------------------------------------------ file operations

  const OPS = {
    sync: { method: "POST", url: "/api/sync-batch-files", job: "sync", title: "Sync files",
            working: "Linking unlinked mask files to their batches…", noun: "files" },
    auto_create: { method: "POST", url: "/api/auto-create-batches", job: "auto_create", title: "Auto-create batches",
                   working: "Creating the batches that files name but that do not exist…", noun: "batches" },
    check: { method: "GET", url: "/api/check-mongo-files?limit=100", job: null, title: "Check files",
             working: "Auditing the mask files…" },
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
      progressText.textContent = op.working + " " + S.fmtNumber(p.done || 0) + " of " + S.fmtNumber(p.total) +
        " " + op.noun + " (" + Math.round((100 * (p.done || 0)) / p.total) + "%)";
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
        if (job.state === "failed") throw new S.ApiError("The running " + op.title.toLowerCase() + " job failed: " + (job.error || "unknown error") + ".", 500);
        return job.result;
      }
      showJobProgress(op, job);
      await new Promise(function (resolve) { window.setTimeout(resolve, 500); });
    }
  }

  function plural(n, word, many) {
    return S.fmtNumber(n) + " " + (n === 1 ? word : (many || word + "s"));
  }

  /* A titled list of examples; long lists start folded so the summary stays readable. */
  function examples(title, items, total, hint) {
    const shown = items.slice(0, 20);
    return h("details", { class: "result-section", open: total <= 10 },
      h("summary", null, h("strong", null, title + " (" + S.fmtNumber(total) + ")")),
      hint ? h("p", { class: "muted small" }, hint) : null,
      shown.length ? h("ul", { class: "examples" }, shown.map(function (x) { return h("li", null, h("code", null, x)); })) : null,
      total > shown.length ? h("p", { class: "muted small" }, "… and " + S.fmtNumber(total - shown.length) + " more.") : null);
  }

  function summarySync(r) {
    const parts = [h("p", { class: "result-head" }, h("strong", null, "Sync finished"), " in " + S.fmtNumber(r.duration_ms) + " ms.")];
    parts.push(h("ul", { class: "result-facts" },
      h("li", null, "Scanned ", h("strong", { "data-result": "files_scanned" }, S.fmtNumber(r.files_scanned)), r.files_scanned === 1 ? " unlinked file." : " unlinked files."),
      h("li", null, "Linked ", h("strong", { "data-result": "files_linked" }, S.fmtNumber(r.files_linked)), r.files_linked === 1 ? " file to " : " files to ",
        h("strong", { "data-result": "batches_updated" }, S.fmtNumber(r.batches_updated)), r.batches_updated === 1 ? " batch." : " batches."),
      h("li", null, h("strong", { "data-result": "unmatched" }, S.fmtNumber(r.unmatched)), r.unmatched === 1 ? " file matches no batch; " : " files match no batch; ",
        h("strong", { "data-result": "missing_batches" }, S.fmtNumber(r.missing_batches || 0)),
        (r.missing_batches === 1 ? " batch named by files does not exist." : " batches named by files do not exist."))));
    if (r.unmatched) {
      parts.push(examples("Files that match no batch", r.unmatched_examples || [], r.unmatched,
        "Their names contain no batch token (e.g. batch_0007 or b7). Rename them or upload them to a batch."));
    }
    if (r.missing_batches) {
      parts.push(examples("Batches named by files but missing", r.missing_batch_examples || [], r.missing_batches,
        "Use “Auto-create batches” to create them, then sync again."));
    }
    if (!r.files_scanned) parts.push(h("p", null, "Every mask file is already linked."));
    return parts;
  }

  function summaryAutoCreate(r) {
    const parts = [h("p", { class: "result-head" }, h("strong", null, "Auto-create finished.")),
      h("ul", { class: "result-facts" },
        h("li", null, "Created ", h("strong", { "data-result": "created" }, S.fmtNumber(r.created)), r.created === 1 ? " new pending batch." : " new pending batches."),
        h("li", null, plural(r.skipped_existing, "batch", "batches") + " named by files already existed."))];
    if (r.limited) {
      parts.push(h("p", { class: "notice warn" }, "Stopped at the per-run limit: " + plural(r.missing_remaining, "more batch", "more batches") +
        " to create. Run it again."));
    }
    if (r.created) parts.push(h("p", null, "Run “Sync files” to link their files to the new batches."));
    else if (!r.limited) parts.push(h("p", null, "No batch was missing."));
    return parts;
  }

  function summaryCheck(r) {
    const dupFiles = r.duplicates.reduce(function (sum, d) { return sum + (d.count || d.files.length); }, 0);
    const parts = [h("p", { class: "result-head" }, h("strong", null, "Check finished.")),
      h("ul", { class: "result-facts" },
        h("li", null, h("strong", { "data-result": "files_total" }, S.fmtNumber(r.files_total)), " mask files: ",
          h("strong", { "data-result": "linked" }, S.fmtNumber(r.linked)), " linked, ",
          h("strong", { "data-result": "unlinked" }, S.fmtNumber(r.unlinked)), " unlinked."),
        h("li", null, plural(r.duplicates.length, "group") + " of identical files (" + plural(dupFiles, "file") + ").")),
    ];
    const unmatchedTotal = r.unmatched_total !== undefined ? r.unmatched_total : r.unmatched.length;
    const missingTotal = r.missing_batches_total !== undefined ? r.missing_batches_total : r.missing_batches.length;
    if (unmatchedTotal) parts.push(examples("Unlinked files that match no batch", r.unmatched, unmatchedTotal));
    if (missingTotal) parts.push(examples("Batches named by files but missing", r.missing_batches, missingTotal,
      "“Auto-create batches” creates them."));
    if (r.batches_without_masks.length) {
      parts.push(examples("Batches without masks", r.batches_without_masks, r.batches_without_masks.length,
        r.batches_without_masks.length >= 100 ? "Showing the first 100 by id." : null));
    }
    if (r.duplicates.length) {
      parts.push(h("div", { class: "result-section" },
        h("h4", null, "Identical files (" + plural(r.duplicates.length, "group") + ")"),
        h("ul", { class: "examples" }, r.duplicates.slice(0, 20).map(function (d) {
          return h("li", null, h("code", { title: d.sha256 }, d.sha256.slice(0, 12) + "…"), " × " + (d.count || d.files.length) + ": ",
            d.files.map(function (f) { return f.filename; }).join(", "));
        }))));
    }
    if (!unmatchedTotal && !missingTotal && !r.duplicates.length) parts.push(h("p", null, "No problems found."));
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
          progressText.textContent = "Another " + op.title.toLowerCase() + " job is running; waiting for it to finish…";
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
      S.showMessage(resultBox, "error", op.title + " failed: " + err.message);
    } finally {
      setBusy(null);
    }
  }

  function clearResult() { S.clear(resultBox); }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { runOp(button.getAttribute("data-op")); });
  });

  renderUnknown("…");
  loadMetrics(loadNames());  // the figures and the names are fetched in parallel
})();
