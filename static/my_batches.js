/* My batches (segmenters): the queue (GET /api/batches?assignee=<me>), the actions the server
 * offers on each row (page.offers: per status, decided by policy.py) and a mask upload into
 * one of the listed batches that takes uploads. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const me = S.config.user.username;
  const page = JSON.parse(document.getElementById("my-page").textContent);
  const params = new URLSearchParams(window.location.search);
  const body = document.getElementById("my-body");
  const pager = document.getElementById("my-pager");
  const message = document.getElementById("my-message");
  const summary = document.getElementById("my-summary");
  const statusFilter = document.getElementById("my-status");
  const uploadForm = document.querySelector("[data-upload]");
  const uploadBatch = uploadForm.querySelector("[data-upload-batch]");
  const uploadFile = uploadForm.querySelector("[data-upload-file]");
  const STAT_ORDER = [["assigned", "To start"], ["in_progress", "In progress"], ["rejected", "To redo"],
                      ["completed", "Completed"], ["reviewed", "Reviewed"]];
  let items = [];

  if (params.get("status")) statusFilter.value = params.get("status");
  document.getElementById("my-filter").addEventListener("submit", function (event) {
    event.preventDefault();
    const next = new URLSearchParams();
    if (statusFilter.value) next.set("status", statusFilter.value);
    const query = next.toString();
    window.location.assign(window.location.pathname + (query ? "?" + query : ""));
  });

  function offered(item, kind) {
    const offer = page.offers[item.status];
    return offer ? offer.actions.filter(function (action) { return action.action === kind; }) : [];
  }

  function actionButtons(item) {
    const cell = h("div", { class: "row-actions" });
    offered(item, "status").forEach(function (action) {
      cell.appendChild(h("button", { type: "button", class: "small", "data-action": action.status,
        "aria-label": action.text + " " + item.id, onclick: function () { changeStatus(item, action); } }, action.text));
    });
    if (offered(item, "upload").length) {
      cell.appendChild(h("button", { type: "button", class: "small secondary", "aria-label": "Upload a mask to " + item.id,
        onclick: function () { uploadBatch.value = item.id; uploadFile.focus(); } }, "Upload…"));
    }
    return cell;
  }

  function row(item) {
    return h("tr", { "data-id": item.id },
      h("th", { scope: "row" }, h("a", { href: S.batchUrl(item.id) }, item.id),
        item.name && item.name !== item.id ? h("div", { class: "muted small" }, item.name) : null),
      h("td", null, S.badge(item.status), item.rejection_reason
        ? h("div", { class: "small rejection-reason", "data-rejection-reason": "" }, "Why: " + item.rejection_reason) : null),
      h("td", { class: "col-progress" }, S.progressBar(item.progress),
        h("div", { class: "muted small" }, S.fmtNumber(item.mask_count) + " of " + S.fmtNumber(item.image_count) + " masks")),
      h("td", null, actionButtons(item)));
  }

  function renderRows() {
    S.clear(body);
    if (!items.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, params.get("status")
        ? "None of your batches is " + S.statusLabel(params.get("status")).toLowerCase() + "."
        : "No batches are assigned to you right now. A lead assigns them on the Batches page.")));
    }
    items.forEach(function (item) { body.appendChild(row(item)); });
  }

  function fillUploadChoices() {
    const chosen = uploadBatch.value;
    Array.from(uploadBatch.options).slice(1).forEach(function (o) { o.remove(); });
    items.filter(function (item) { return offered(item, "upload").length; }).forEach(function (item) {
      uploadBatch.appendChild(h("option", { value: item.id }, item.id + " · " + S.statusLabel(item.status)));
    });
    if (Array.from(uploadBatch.options).some(function (o) { return o.value === chosen; })) uploadBatch.value = chosen;
  }

  async function load() {
    const q = new URLSearchParams({ assignee: me });
    ["status", "page"].forEach(function (name) { if (params.get(name)) q.set(name, params.get(name)); });
    try {
      const envelope = await S.api("GET", "/api/batches?" + q.toString());
      items = envelope.items;
      renderRows();
      fillUploadChoices();
      S.renderPager(pager, envelope, "batches");
      summary.textContent = S.fmtNumber(envelope.total) + (envelope.total === 1 ? " batch" : " batches") +
        (params.get("status") ? " · " + S.statusLabel(params.get("status")).toLowerCase() : " assigned to you");
      document.getElementById("my-table").setAttribute("data-loaded", "true");
    } catch (err) {
      S.clear(body).appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, "Your batches could not be loaded.")));
      S.showMessage(message, "error", err.message);
    }
  }

  async function loadStats() {
    const box = document.getElementById("my-stats");
    try {
      const m = await S.api("GET", "/api/metrics");
      const mine = m.by_assignee.find(function (r) { return r.assignee === me; }) || {};
      S.clear(box);
      STAT_ORDER.forEach(function (pair) {
        box.appendChild(h("a", { class: "stat link s-" + pair[0], href: "?status=" + pair[0], "data-stat": pair[0] },
          h("span", { class: "stat-label" }, pair[1]),
          h("span", { class: "stat-value" }, S.fmtNumber(mine[pair[0]] || 0))));
      });
    } catch (err) { S.clear(box); }
  }

  async function changeStatus(item, action) {
    body.querySelectorAll('tr[data-id="' + item.id + '"] button').forEach(function (b) { b.disabled = true; });
    try {
      const detail = await S.changeBatchStatus(item.id, { status: action.status });
      if (!detail) {
        S.showMessage(message, "info", item.id + " is still " + S.statusLabel(item.status).toLowerCase() + ".");
        const kept = body.querySelector('tr[data-id="' + item.id + '"]');
        if (kept) kept.replaceWith(row(item));
        return;
      }
      ["status", "progress", "mask_count", "image_count", "updated_at", "assignee"].forEach(function (k) { item[k] = detail[k]; });
      if (item.status !== "rejected") delete item.rejection_reason;
      const old = body.querySelector('tr[data-id="' + item.id + '"]');
      if (old) old.replaceWith(row(item));
      fillUploadChoices();
      S.showMessage(message, "ok", item.id + " is now " + S.statusLabel(item.status).toLowerCase() + ".");
      loadStats();
      window.setTimeout(loadStats, 1500);
    } catch (err) {
      S.showMessage(message, "error", "Could not update " + item.id + ": " + err.message);
      const old = body.querySelector('tr[data-id="' + item.id + '"]');
      if (old) old.replaceWith(row(item));
    }
  }

  let lastChoice = "";
  uploadBatch.addEventListener("change", function () { lastChoice = uploadBatch.value; });
  S.bindUploadForm(uploadForm, {
    batchId: function () { lastChoice = uploadBatch.value; return uploadBatch.value; },
    afterReset: function () { uploadBatch.value = lastChoice; },
    onUploaded: function () { load(); },
  });

  load();
  loadStats();
})();
