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
  // Two notions of progress, each named where shown: "batches done" counts batches by status
  // (completed or reviewed); "masks per image" counts mask files against images.
  // The figures refresh every REFRESH_MS while the page is visible; after a failure they wait
  // longer each time (up to MAX_BACKOFF_MS). Until they load, nothing looks like data.

  const REFRESH_MS = 30000;
  const STALE_REFRESH_MS = 3000;
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
    setStat("percent", S.fmtPercent(m.progress.percent));
    setStat("done", S.t("%(done)s of %(total)s batches completed or reviewed", { done: S.fmtNumber(m.progress.done), total: S.fmtNumber(m.progress.total) }));
    const meter = document.querySelector('[data-stat-bar="percent"]');
    meter.parentNode.classList.remove("unknown");
    meter.style.width = Math.min(100, m.progress.percent) + "%";
    setStat("masks", S.fmtPercent(percentOf(Math.min(t.masks, t.images), t.images)));
    setStat("images", S.t("%(masks)s masks for %(images)s images", { masks: S.fmtNumber(t.masks), images: S.fmtNumber(t.images) }));
    setStat("linked_files", S.fmtNumber(t.linked_files));
    setStat("files", S.tn("of %(n)s mask file", "of %(n)s mask files", t.files, { n: S.fmtNumber(t.files) }));
    setStat("unlinked_files", S.fmtNumber(t.unlinked_files));
    statsBox.querySelectorAll(".stat").forEach(function (el) { el.setAttribute("data-state", "known"); });
    // The team figures are stored once per change; `stale` says a newer change is still being counted.
    lastStale = Boolean(m.stale);
    document.getElementById("metrics-updated").textContent = S.t("Figures as of %(time)s; they refresh on their own.", { time: S.fmtDate(m.generated_at) }) +
      (m.stale ? " " + S.t("Recent changes are still being counted.") : "");
  }

  /* Loading or failed: every figure shows that it is unknown, and the file operations wait. */
  function renderUnknown(text) {
    ["batches", "percent", "masks", "linked_files", "unlinked_files"].forEach(function (name) { setStat(name, text); });
    ["images", "files"].forEach(function (name) { setStat(name, ""); });
    setStat("done", t("by status: completed or reviewed"));
    const meter = document.querySelector('[data-stat-bar="percent"]');
    meter.style.width = "0";
    meter.parentNode.classList.add("unknown");
    statsBox.querySelectorAll(".stat").forEach(function (el) { el.setAttribute("data-state", "unknown"); });
    ["chart-status", "chart-assignee", "chart-days"].forEach(function (id) {
      S.clear(document.getElementById(id)).appendChild(h("p", { class: "chart-state" + (text === "—" ? " error" : "") },
        text === "—" ? t("Not available: the figures could not be loaded.") : t("Loading…")));
    });
    S.clear(document.getElementById("chart-assignee-legend"));
  }

  function barRow(label, value, max, text, status, href) {
    const width = max > 0 ? (100 * value) / max : 0;
    return h("a", { class: "bar-row", href: href, "data-status": status, "aria-label": t("%(label)s: %(value)s. Show these batches", { label: label, value: text }) },
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
      box.appendChild(barRow(S.statusLabel(status), n, max, S.fmtNumber(n) + " (" + S.fmtPercent(percentOf(n, total)) + ")", status,
        listUrl({ status: status })));
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
      legend.appendChild(h("a", { class: "legend-item", href: listUrl({ status: s }), "data-status": s },
        h("span", { class: "swatch s-" + s, "aria-hidden": "true" }), S.statusLabel(s)));
    });
    m.by_assignee.forEach(function (row) {
      const total = shown.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const done = DONE.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const name = displayNames.get(row.assignee) || row.assignee;
      const track = h("span", { class: "bar-track stacked" });
      shown.forEach(function (s) {
        const n = row[s] || 0;
        if (!n) return;
        track.appendChild(h("a", { class: "bar-fill s-" + s, href: listUrl({ assignee: row.assignee, status: s }),
          title: S.statusLabel(s) + ": " + S.fmtNumber(n), "aria-label": name + ", " + S.statusLabel(s).toLowerCase() + ": " + S.fmtNumber(n),
          style: "width:" + ((100 * n) / total).toFixed(2) + "%" }));
      });
      box.appendChild(h("div", { class: "bar-row" },
        h("a", { class: "bar-label", title: row.assignee, href: listUrl({ assignee: row.assignee }) }, name),
        track,
        h("span", { class: "bar-value" }, tn("%(done)s of %(total)s batch done (%(percent)s)", "%(done)s of %(total)s batches done (%(percent)s)", total,
          { done: S.fmtNumber(done), total: S.fmtNumber(total), percent: S.fmtPercent(total ? Math.round((100 * done) / total) : 0) }))));
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
      "aria-label": total
        ? tn("%(n)s batch completed in the last 30 days; busiest day %(day)s (%(busiest)s).", "%(n)s batches completed in the last 30 days; busiest day %(day)s (%(busiest)s).", total,
             { n: S.fmtNumber(total), day: fmtDay(busiest.date), busiest: S.fmtNumber(busiest.n) })
        : t("No batch was completed in the last 30 days.") });
    ticks.forEach(function (v) {
      const y = margin + plotH - (v / top) * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis y-axis" }, S.fmtNumber(v)));
    });
    days.forEach(function (d, i) {
      const barH = (d.n / top) * plotH;
      const x = left + i * step + step * 0.15;
      const rect = svg("rect", { x: x.toFixed(1), y: (margin + plotH - barH).toFixed(1), width: (step * 0.7).toFixed(1),
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

  let refreshTimer = null;
  let failures = 0;
  let lastLoaded = 0;
  let lastStale = false;  // figures still being recomputed: ask again soon

  function schedule() {
    window.clearTimeout(refreshTimer);
    if (document.hidden) return;
    const wait = failures ? Math.min(MAX_BACKOFF_MS, REFRESH_MS * Math.pow(2, failures))
      : (lastStale ? STALE_REFRESH_MS : REFRESH_MS);
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
      S.showMessage(errorSlot, "error", [t("Could not load the figures: %(reason)s", { reason: err.message }) + " ",
        h("button", { type: "button", class: "small", "data-retry": "metrics", onclick: retry }, t("Retry"))]);
    } finally {
      statsBox.removeAttribute("aria-busy");
      schedule();
    }
  }

  function retry() {
    renderUnknown("…");
    if (!lastLoaded) statsBox.setAttribute("data-state", "loading");
    S.showMessage(errorSlot, "info", t("Loading the figures…"));
    loadMetrics().then(function () { if (lastLoaded) statsBox.focus(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { window.clearTimeout(refreshTimer); return; }
    if (Date.now() - lastLoaded >= REFRESH_MS) loadMetrics(); else schedule();
  });

  async function loadNames() {
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      displayNames = new Map(users.map(function (u) { return [u.username, u.display_name]; }));
    } catch (err) { displayNames = new Map(); }
  }

  // ------------------------------------------------------------------ file operations (background jobs)

  const OPS = {
    sync: { url: "/api/sync-batch-files", title: t("Sync files"), working: t("Linking unlinked mask files to their batches…") },
    auto_create: { url: "/api/auto-create-batches", title: t("Auto-create batches"),
                   working: t("Creating the batches that files name but that do not exist…") },
    check: { url: "/api/check-mongo-files?limit=100", title: t("Check files"), working: t("Auditing the mask files…") },
  };
  const POLL_MS = 700;
  const buttons = Array.from(document.querySelectorAll("[data-op]"));
  const progressBox = document.getElementById("op-progress");
  const progressBar = document.getElementById("op-progress-bar");
  const progressTitle = document.getElementById("op-progress-title");
  const progressText = document.getElementById("op-progress-text");
  const cancelButton = document.getElementById("op-cancel");
  const resultBox = document.getElementById("op-result");
  const lastSync = document.getElementById("last-sync");
  let following = null;  // {name, jobId, timer}

  function setBusy(name) {
    buttons.forEach(function (b) { b.disabled = !!name; });
    progressBox.hidden = !name;
    if (name) {
      resultBox.setAttribute("aria-busy", "true");
      progressTitle.textContent = OPS[name].working;
      progressText.textContent = t("Starting…");
      progressBar.removeAttribute("value");
      progressBar.removeAttribute("max");
      cancelButton.disabled = false;
    } else {
      resultBox.removeAttribute("aria-busy");
    }
  }

  function showProgress(name, job) {
    S.setJobBar(progressBar, job);
    progressBox.setAttribute("data-job-id", job.id);
    progressBox.setAttribute("data-state", job.state);
    progressBox.setAttribute("data-done", String((job.progress && job.progress.done) || 0));
    let text = S.jobProgressText(job);
    if (job.state === "queued" && job.created_at && Date.now() - new Date(job.created_at).getTime() > 15000) {
      text += " " + t("No job runner has taken it for a while: is one running (flask --app app run-jobs)?");
    }
    if (job.cancel_requested) {
      text = t("Cancelling…") + " " + text;
      cancelButton.disabled = true;
    }
    if (job.attempts > 1) text += " " + t("(resumed after an interruption)");
    progressText.textContent = text;
  }

  /* Follow a job until it ends: the progress bar while it runs, its summary after. */
  function follow(name, jobId) {
    if (following) window.clearTimeout(following.timer);
    following = { name: name, jobId: jobId, timer: null };
    setBusy(name);
    poll(following);
  }

  async function poll(f) {
    let job;
    try {
      job = await S.api("GET", "/api/jobs/" + encodeURIComponent(f.jobId));
    } catch (err) {
      if (following !== f) return;
      progressText.textContent = t("Could not read the job's progress (%(reason)s); trying again…", { reason: err.message });
      f.timer = window.setTimeout(function () { poll(f); }, POLL_MS * 3);
      return;
    }
    if (following !== f) return;
    if (job.state === "queued" || job.state === "running") {
      showProgress(f.name, job);
      f.polls = (f.polls || 0) + 1;
      if (f.name !== "check" && f.polls % 8 === 0) loadMetrics();  // the figures move with the job
      f.timer = window.setTimeout(function () { poll(f); }, POLL_MS);
      return;
    }
    following = null;
    setBusy(null);
    progressBox.removeAttribute("data-job-id");
    showEnd(f.name, job);
    if (f.name !== "check") {
      await loadMetrics();
      window.setTimeout(loadMetrics, 1500);  // other workers see the write within about a second
    }
    loadLastSync();
  }

  function showEnd(name, job) {
    const op = OPS[name];
    clearResult();
    if (job.state === "done") {
      resultBox.appendChild(h("div", { class: "notice ok result", role: "status", "data-op-result": name, "data-job-id": job.id },
        SUMMARIES[name](job.result)));
    } else if (job.state === "cancelled") {
      const p = job.progress || {};
      resultBox.appendChild(h("div", { class: "notice warn result", role: "status", "data-op-result": name, "data-job-state": "cancelled" },
        h("p", null, h("strong", null, t("“%(job)s” was cancelled", { job: op.title })), " ",
          p.total ? t("after %(done)s of %(total)s %(unit)s.", { done: S.fmtNumber(p.done), total: S.fmtNumber(p.total),
            unit: S.jobUnit(p.unit, p.total) }) : ""),
        h("p", { class: "muted small" }, t("What it had written stays; run it again to go on."))));
    } else {
      S.showMessage(resultBox, "error", t("%(job)s failed: %(reason)s", { job: op.title, reason: S.jobError(job) }) +
        ". " + t("Run it again to go on."));
    }
  }

  async function startOp(name) {
    const op = OPS[name];
    clearResult();
    setBusy(name);
    try {
      const started = await S.api("POST", op.url);
      follow(name, started.job_id);
    } catch (err) {
      if (err.status === 409 && err.body && err.body.job_id) {
        follow(name, err.body.job_id);
        progressTitle.textContent = t("Another “%(job)s” job is already running; following it.", { job: op.title });
      } else {
        setBusy(null);
        S.showMessage(resultBox, "error", t("%(job)s failed: %(reason)s", { job: op.title, reason: err.message }));
      }
    }
  }

  async function cancelJob() {
    if (!following) return;
    cancelButton.disabled = true;
    try {
      const job = await S.api("POST", "/api/jobs/" + encodeURIComponent(following.jobId) + "/cancel");
      if (following) showProgress(following.name, job);
    } catch (err) {
      if (err.status !== 409) {  // 409: it ended meanwhile, the next poll shows how
        cancelButton.disabled = false;
        S.showMessage(resultBox, "error", t("Could not cancel: %(reason)s", { reason: err.message }));
      }
    }
  }

  /* Back on the page while a job runs (started here or by another lead): follow it again. */
  async function reattach() {
    try {
      const data = await S.api("GET", "/api/jobs?limit=20");
      const active = data.items.find(function (job) {
        return OPS[job.kind] && (job.state === "running" || job.state === "queued");
      });
      if (active && !following) follow(active.kind, active.id);
    } catch (err) { /* the buttons still work */ }
  }

  /* "Last sync: when, by whom, what it did." */
  async function loadLastSync() {
    try {
      const data = await S.api("GET", "/api/jobs?kind=sync&limit=10");
      const last = data.items.find(function (job) { return job.state !== "queued" && job.state !== "running"; });
      S.clear(lastSync);
      if (!last) { lastSync.textContent = t("No sync has run yet."); return; }
      lastSync.appendChild(h("span", null, t("Last sync:") + " "));
      lastSync.appendChild(S.timeEl(last.finished_at || last.created_at));
      lastSync.appendChild(h("span", null, " " + t("by %(name)s", { name: last.started_by || "—" }) + " — "));
      const r = last.result || {};
      let what;
      if (last.state === "done") {
        what = t("linked %(files)s to %(batches)s (scanned %(scanned)s).", {
          files: S.fmtNumber(r.files_linked || 0) + " " + tn("file", "files", r.files_linked || 0),
          batches: S.fmtNumber(r.batches_updated || 0) + " " + tn("batch", "batches", r.batches_updated || 0),
          scanned: S.fmtNumber(r.files_scanned || 0) });
      } else if (last.state === "cancelled") {
        what = t("cancelled after linking %(files)s.", {
          files: S.fmtNumber(r.files_linked || 0) + " " + tn("file", "files", r.files_linked || 0) });
      } else {
        what = t("failed: %(reason)s.", { reason: S.jobError(last) });
      }
      lastSync.appendChild(h("span", { "data-last-sync-state": last.state }, what));
      lastSync.appendChild(h("span", null, " "));
      lastSync.appendChild(h("a", { href: "/jobs" }, t("All jobs")));
    } catch (err) {
      lastSync.textContent = "";
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
    if (r.closed) {
      parts.push(examples(t("Files naming reviewed batches"), r.closed_examples || [], r.closed,
        t("Reviewed batches take no more files: they wait unlinked. Reopen the batch to add them.")));
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

  function clearResult() { S.clear(resultBox); }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { startOp(button.getAttribute("data-op")); });
  });
  cancelButton.addEventListener("click", cancelJob);

  renderUnknown("…");
  loadMetrics(loadNames());  // the figures and the names are fetched in parallel
  reattach();
  loadLastSync();
})();
