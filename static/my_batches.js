/* My batches (segmenters): the queue (GET /api/batches?assignee=<me>), the actions the server
 * offers on each row (page.offers: per status, decided by policy.py) and a mask upload into
 * one of the listed batches that takes uploads. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;
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
  const STAT_ORDER = [["assigned", t("To start")], ["in_progress", t("In progress")], ["rejected", t("To redo")],
                      ["completed", t("Completed")], ["reviewed", t("Reviewed")]];
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
      cell.appendChild(h("button", { type: "button", class: "small secondary", "aria-label": t("Upload a mask to %(id)s", { id: item.id }),
        onclick: function () { uploadBatch.value = item.id; uploadFile.focus(); } }, t("Upload…")));
    }
    return cell;
  }

  function row(item) {
    return h("tr", { "data-id": item.id },
      h("th", { scope: "row" }, h("a", { href: S.batchUrl(item.id) }, item.id),
        item.name && item.name !== item.id ? h("div", { class: "muted small" }, item.name) : null),
      h("td", null, S.badge(item.status)),
      h("td", { class: "col-progress" }, S.progressBar(item.progress),
        h("div", { class: "muted small" }, tn("%(masks)s of %(n)s mask", "%(masks)s of %(n)s masks", item.image_count, { masks: S.fmtNumber(item.mask_count), n: S.fmtNumber(item.image_count) }))),
      h("td", null, actionButtons(item)));
  }

  function renderRows() {
    S.clear(body);
    if (!items.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, params.get("status")
        ? t("None of your batches is %(status)s.", { status: S.statusLabel(params.get("status")).toLowerCase() })
        : t("No batches are assigned to you right now. A lead assigns them on the Batches page."))));
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
      S.renderPager(pager, envelope, function (n) { return tn("%(n)s batch", "%(n)s batches", n, { n: S.fmtNumber(n) }); });
      summary.textContent = params.get("status")
        ? tn("%(n)s batch", "%(n)s batches", envelope.total, { n: S.fmtNumber(envelope.total) }) + " · " + S.statusLabel(params.get("status")).toLowerCase()
        : tn("%(n)s batch assigned to you", "%(n)s batches assigned to you", envelope.total, { n: S.fmtNumber(envelope.total) });
      document.getElementById("my-table").setAttribute("data-loaded", "true");
    } catch (err) {
      S.clear(body).appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, t("Your batches could not be loaded."))));
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
      const detail = await S.api("PATCH", "/api/batches/" + encodeURIComponent(item.id), { status: action.status });
      ["status", "progress", "mask_count", "image_count", "updated_at", "assignee"].forEach(function (k) { item[k] = detail[k]; });
      const old = body.querySelector('tr[data-id="' + item.id + '"]');
      if (old) old.replaceWith(row(item));
      fillUploadChoices();
      S.showMessage(message, "ok", t("%(id)s is now %(status)s.", { id: item.id, status: S.statusLabel(item.status).toLowerCase() }));
      loadStats();
      window.setTimeout(loadStats, 1500);
    } catch (err) {
      S.showMessage(message, "error", t("Could not update %(id)s: %(reason)s", { id: item.id, reason: err.message }));
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
