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

  function setStat(name, text) {
    document.querySelectorAll('[data-stat="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function renderTotals(m) {
    const t = m.totals;
    setStat("batches", S.fmtNumber(t.batches));
    setStat("percent", m.progress.percent + "%");
    setStat("done", S.fmtNumber(m.progress.done) + " of " + S.fmtNumber(m.progress.total) + " completed or reviewed");
    document.querySelector('[data-stat-bar="percent"]').style.width = Math.min(100, m.progress.percent) + "%";
    setStat("masks", S.fmtNumber(t.masks));
    setStat("images", "for " + S.fmtNumber(t.images) + " images");
    setStat("linked_files", S.fmtNumber(t.linked_files));
    setStat("files", "of " + S.fmtNumber(t.files) + " mask files");
    setStat("unlinked_files", S.fmtNumber(t.unlinked_files));
    document.getElementById("metrics-updated").textContent = "Figures as of " + S.fmtDate(m.generated_at);
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
    if (!total) { box.appendChild(h("p", { class: "empty" }, "No batches yet.")); return; }
    const max = Math.max.apply(null, STATUSES.map(function (s) { return m.by_status[s] || 0; }));
    STATUSES.forEach(function (status) {
      const n = m.by_status[status] || 0;
      const pct = total ? Math.round((1000 * n) / total) / 10 : 0;
      box.appendChild(barRow(S.statusLabel(status), n, max, S.fmtNumber(n) + " (" + pct + "%)", status));
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
      legend.appendChild(h("span", { class: "legend-item" }, h("span", { class: "swatch s-" + s, "aria-hidden": "true" }), S.statusLabel(s)));
    });
    m.by_assignee.forEach(function (row) {
      const total = shown.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const done = DONE.reduce(function (sum, s) { return sum + (row[s] || 0); }, 0);
      const track = h("span", { class: "bar-track stacked", role: "img",
        "aria-label": shown.map(function (s) { return S.statusLabel(s) + " " + (row[s] || 0); }).join(", ") });
      shown.forEach(function (s) {
        const n = row[s] || 0;
        if (!n) return;
        track.appendChild(h("span", { class: "bar-fill s-" + s, title: S.statusLabel(s) + ": " + n,
          style: "width:" + ((100 * n) / total).toFixed(2) + "%" }));
      });
      const pct = total ? Math.round((100 * done) / total) : 0;
      box.appendChild(h("div", { class: "bar-row" },
        h("span", { class: "bar-label", title: row.assignee }, displayNames[row.assignee] || row.assignee),
        track,
        h("span", { class: "bar-value" }, done + " / " + total + " done (" + pct + "%)")));
    });
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
      "aria-label": total + " batches completed in the last 30 days" +
        (total ? "; busiest day " + busiest.date + " with " + busiest.n : "") });
    [0, 0.5, 1].forEach(function (f) {
      const y = top + plotH - f * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" },
        String(Math.round(f * max * 10) / 10)));
    });
    days.forEach(function (d, i) {
      const barH = (d.n / max) * plotH;
      const x = left + i * step + step * 0.15;
      const rect = svg("rect", { x: x.toFixed(1), y: (top + plotH - barH).toFixed(1), width: (step * 0.7).toFixed(1),
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
      S.showMessage(slot, "error", "Could not load the figures: " + err.message);
    }
  }

  async function loadNames() {
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      displayNames = {};
      users.forEach(function (u) { displayNames[u.username] = u.display_name; });
    } catch (err) { displayNames = {}; }
  }

  // ------------------------------------------------------------------ file operations (background jobs)

  const OPS = {
    sync: { url: "/api/sync-batch-files", title: "Sync files", working: "Linking unlinked mask files to their batches…" },
    auto_create: { url: "/api/auto-create-batches", title: "Auto-create batches",
                   working: "Creating the batches that files name but that do not exist…" },
    check: { url: "/api/check-mongo-files?limit=100", title: "Check files", working: "Auditing the mask files…" },
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
      progressText.textContent = "Starting…";
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
      text += " No job runner has taken it for a while: is one running (flask --app app run-jobs)?";
    }
    if (job.cancel_requested) {
      text = "Cancelling… " + text;
      cancelButton.disabled = true;
    }
    if (job.attempts > 1) text += " (resumed after an interruption)";
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
      progressText.textContent = "Could not read the job's progress (" + err.message + "); trying again…";
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
        h("p", null, h("strong", null, op.title + " was cancelled"),
          p.total ? " after " + S.fmtNumber(p.done) + " of " + S.fmtNumber(p.total) + " " + (p.unit || "items") + "." : "."),
        h("p", { class: "muted small" }, "What it had written stays; run it again to go on.")));
    } else {
      S.showMessage(resultBox, "error", op.title + " failed: " + (job.error || "unknown error") + ". Run it again to go on.");
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
        progressTitle.textContent = "Another " + op.title.toLowerCase() + " job is already running; following it.";
      } else {
        setBusy(null);
        S.showMessage(resultBox, "error", op.title + " failed: " + err.message);
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
        S.showMessage(resultBox, "error", "Could not cancel: " + err.message);
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
      if (!last) { lastSync.textContent = "No sync has run yet."; return; }
      lastSync.appendChild(h("span", null, "Last sync: "));
      lastSync.appendChild(S.timeEl(last.finished_at || last.created_at));
      lastSync.appendChild(h("span", null, " by " + (last.started_by || "someone") + " — "));
      const r = last.result || {};
      let what;
      if (last.state === "done") {
        what = "linked " + plural(r.files_linked || 0, "file") + " to " + plural(r.batches_updated || 0, "batch", "batches") +
          " (scanned " + S.fmtNumber(r.files_scanned || 0) + ").";
      } else if (last.state === "cancelled") {
        what = "cancelled after linking " + plural(r.files_linked || 0, "file") + ".";
      } else {
        what = "failed: " + (last.error || "unknown error") + ".";
      }
      lastSync.appendChild(h("span", { "data-last-sync-state": last.state }, what));
      lastSync.appendChild(h("span", null, " "));
      lastSync.appendChild(h("a", { href: "/jobs" }, "All jobs"));
    } catch (err) {
      lastSync.textContent = "";
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

  function clearResult() { S.clear(resultBox); }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { startOp(button.getAttribute("data-op")); });
  });
  cancelButton.addEventListener("click", cancelJob);

  loadNames().then(loadMetrics);
  reattach();
  loadLastSync();
})();
