/* My batches (segmenters): a work queue. The batches to work on (in progress, then rejected with
 * the lead's reason, then assigned), the finished ones apart, a Next batch action, the user's
 * own figures (GET /api/me/summary) and a many-file upload into a batch that takes uploads.
 * What each row offers comes from the server (page.offers: per status, decided by policy.py). */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;
  const me = S.config.user.username;
  const page = JSON.parse(document.getElementById("my-page").textContent);
  const QUEUE = ["in_progress", "rejected", "assigned"];
  const FINISHED = ["completed", "reviewed"];
  const FINISHED_SHOWN = 20;
  const STAT_ORDER = [["in_progress", t("In progress")], ["rejected", t("To redo")], ["assigned", t("To start")],
                      ["completed", t("Completed")], ["reviewed", t("Reviewed")]];
  const body = document.getElementById("my-body");
  const doneBody = document.getElementById("done-body");
  const message = document.getElementById("my-message");
  const summary = document.getElementById("my-summary");
  const uploadForm = document.querySelector("[data-multi-upload]");
  const uploadBatch = uploadForm.querySelector("[data-upload-batch]");
  const nextCard = document.getElementById("next-card");
  const nextButton = document.getElementById("next-button");
  let queue = [];

  function offered(item, kind) {
    const offer = page.offers[item.status];
    return offer ? offer.actions.filter(function (action) { return action.action === kind; }) : [];
  }

  /* The status change that puts a batch in progress, when the server offers one. */
  function startAction(item) {
    return offered(item, "status").find(function (a) { return a.status === "in_progress"; }) || null;
  }

  function batchCell(item) {
    return h("th", { scope: "row" }, h("a", { href: S.batchUrl(item.id) }, item.id),
      item.name && item.name !== item.id ? h("div", { class: "muted small" }, item.name) : null,
      item.rejection_reason ? h("div", { class: "reason", "data-rejection-reason": "" }, h("strong", null, t("Lead's reason:")), " ", item.rejection_reason) : null);
  }

  function progressCell(item) {
    return h("td", { class: "col-progress", "data-label": t("Progress") }, S.progressBar(item.progress),
      h("div", { class: "muted small" }, tn("%(masks)s of %(n)s mask", "%(masks)s of %(n)s masks", item.image_count, { masks: S.fmtNumber(item.mask_count), n: S.fmtNumber(item.image_count) })));
  }

  function actionButtons(item) {
    const cell = h("div", { class: "row-actions" });
    offered(item, "status").forEach(function (action) {
      cell.appendChild(h("button", { type: "button", class: "small", "data-action": action.status,
        "aria-label": t("%(action)s %(id)s", { action: action.text, id: item.id }), onclick: function () { changeStatus(item, action); } }, action.text));
    });
    if (offered(item, "upload").length) {
      cell.appendChild(h("button", { type: "button", class: "small secondary", "aria-label": t("Upload masks to %(id)s", { id: item.id }),
        onclick: function () { chooseUpload(item.id); } }, t("Upload…")));
    }
    return cell;
  }

  function queueRow(item) {
    return h("tr", { "data-id": item.id, "data-status": item.status }, batchCell(item),
      h("td", { "data-label": t("Status") }, S.badge(item.status)), progressCell(item),
      h("td", { "data-label": t("Actions") }, actionButtons(item)));
  }

  function doneRow(item) {
    return h("tr", { "data-id": item.id, "data-status": item.status }, batchCell(item),
      h("td", { "data-label": t("Status") }, S.badge(item.status)), progressCell(item),
      h("td", { "data-label": t("Updated") }, S.timeEl(item.updated_at)));
  }

  function renderQueue() { S.keepingFocus(body, drawQueue); }

  function drawQueue() {
    S.clear(body);
    if (!queue.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" },
        t("Nothing to do right now. A lead assigns batches on the Batches page."))));
    }
    queue.forEach(function (item) { body.appendChild(queueRow(item)); });
    S.rovingTable(body);
    fillUploadChoices();
    renderNext();
  }

  function renderFinished(envelopes) {
    const items = envelopes.reduce(function (all, e) { return all.concat(e.items); }, [])
      .sort(function (a, b) { return String(b.updated_at).localeCompare(String(a.updated_at)); }).slice(0, FINISHED_SHOWN);
    const total = envelopes.reduce(function (sum, e) { return sum + e.total; }, 0);
    S.clear(doneBody);
    if (!items.length) doneBody.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, t("No finished batches yet."))));
    items.forEach(function (item) { doneBody.appendChild(doneRow(item)); });
    S.rovingTable(doneBody);
    document.getElementById("done-count").textContent = total > items.length
      ? t("Latest %(shown)s of %(n)s", { shown: S.fmtNumber(items.length), n: S.fmtNumber(total) })
      : tn("%(n)s batch", "%(n)s batches", total, { n: S.fmtNumber(total) });
  }

  function renderSummary(mine) {
    const box = S.clear(document.getElementById("my-stats"));
    STAT_ORDER.forEach(function (pair) {
      box.appendChild(h("div", { class: "stat s-" + pair[0], "data-stat": pair[0] },
        h("span", { class: "stat-label" }, pair[1]),
        h("span", { class: "stat-value" }, S.fmtNumber(mine.by_status[pair[0]] || 0))));
    });
    summary.textContent = [
      tn("%(n)s batch to work on", "%(n)s batches to work on", mine.open, { n: S.fmtNumber(mine.open) }),
      t("%(n)s finished", { n: S.fmtNumber(mine.done) }),
      tn("%(masks)s of %(n)s mask done", "%(masks)s of %(n)s masks done", mine.images, { masks: S.fmtNumber(mine.masks), n: S.fmtNumber(mine.images) }),
    ].join(" · ");
  }

  /* The batch to work on next: the first of the queue (in progress, rejected, then assigned). */
  function nextItem() { return queue.find(function (item) { return startAction(item) || offered(item, "upload").length; }) || null; }

  function renderNext() {
    const item = nextItem();
    nextCard.hidden = !item;
    if (!item) return;
    const start = item.status === "in_progress" ? null : startAction(item);
    document.getElementById("next-text").textContent = item.id + (item.name && item.name !== item.id ? " · " + item.name : "") +
      " — " + S.statusLabel(item.status).toLowerCase() + ", " +
      tn("%(masks)s of %(n)s mask", "%(masks)s of %(n)s masks", item.image_count, { masks: S.fmtNumber(item.mask_count), n: S.fmtNumber(item.image_count) }) +
      (item.rejection_reason ? ". " + t("Lead's reason:") + " " + item.rejection_reason : "");
    nextButton.textContent = start ? t("%(action)s %(id)s and upload", { action: start.text, id: item.id }) : t("Continue %(id)s", { id: item.id });
    nextButton.dataset.batch = item.id;
  }

  function chooseUpload(batchId) {
    uploadBatch.value = batchId;
    document.getElementById("upload-card").scrollIntoView({ block: "nearest" });
    uploadForm.querySelector("[data-upload-files]").focus();
  }

  async function goNext() {
    const item = queue.find(function (i) { return i.id === nextButton.dataset.batch; });
    if (!item) return;
    const start = item.status === "in_progress" ? null : startAction(item);
    if (start && !(await changeStatus(item, start))) return;
    if (offered(item, "upload").length) chooseUpload(item.id);
  }
  nextButton.addEventListener("click", goNext);
  S.shortcut("n", t("Next batch: start or continue it and choose files to upload"), function () { if (!nextCard.hidden) goNext(); });
  S.shortcut("u", t("Choose mask files to upload"), function () { uploadForm.querySelector("[data-upload-files]").focus(); });

  function fillUploadChoices() {
    const chosen = uploadBatch.value;
    Array.from(uploadBatch.options).slice(1).forEach(function (o) { o.remove(); });
    queue.filter(function (item) { return offered(item, "upload").length; }).forEach(function (item) {
      uploadBatch.appendChild(h("option", { value: item.id }, item.id + " · " + S.statusLabel(item.status)));
    });
    if (Array.from(uploadBatch.options).some(function (o) { return o.value === chosen; })) uploadBatch.value = chosen;
  }

  function list(status, extra) {
    const q = new URLSearchParams(Object.assign({ assignee: me, status: status, per_page: "200" }, extra || {}));
    return S.api("GET", "/api/batches?" + q.toString());
  }

  /* Everything the page shows, fetched in parallel. */
  async function load() {
    try {
      const results = await Promise.all(QUEUE.map(function (s) { return list(s); })
        .concat(FINISHED.map(function (s) { return list(s, { per_page: String(FINISHED_SHOWN), sort: "-updated_at" }); }))
        .concat([S.api("GET", "/api/me/summary")]));
      const queued = results.slice(0, QUEUE.length);
      queue = [].concat.apply([], queued.map(function (e) { return e.items; }));
      const hidden = queued.reduce(function (sum, e) { return sum + e.total - e.items.length; }, 0);
      if (hidden) {
        S.showMessage(message, "info", tn("%(n)s more batch to work on is not listed here; the Batches page lists them all.",
          "%(n)s more batches to work on are not listed here; the Batches page lists them all.", hidden, { n: S.fmtNumber(hidden) }));
      }
      renderQueue();
      renderFinished(results.slice(QUEUE.length, QUEUE.length + FINISHED.length));
      renderSummary(results[results.length - 1]);
      document.getElementById("my-table").setAttribute("data-loaded", "true");
    } catch (err) {
      S.clear(body).appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, t("Your batches could not be loaded."))));
      summary.textContent = "";
      S.showMessage(message, "error", [err.message, " ", h("button", { type: "button", class: "small", onclick: load }, t("Retry"))]);
    }
  }

  async function refreshSummary() {
    try { renderSummary(await S.api("GET", "/api/me/summary")); } catch (err) { /* the figures stay as they were */ }
  }

  /* PATCH the status; the row stays where it is with its new status, and focus goes to it. */
  async function changeStatus(item, action) {
    body.querySelectorAll('tr[data-id="' + item.id + '"] button').forEach(function (b) { b.disabled = true; });
    try {
      const detail = await S.changeBatchStatus(item.id, { status: action.status });
      if (!detail) {
        S.showMessage(message, "info", t("Not completed: the batch is still %(status)s.",
          { status: S.statusLabel(item.status).toLowerCase() }));
        renderQueue();
        return;
      }
      ["status", "progress", "mask_count", "image_count", "updated_at", "assignee"].forEach(function (k) { item[k] = detail[k]; });
      if (item.status !== "rejected") delete item.rejection_reason;
      if (FINISHED.indexOf(item.status) !== -1) queue = queue.filter(function (i) { return i !== item; });
      renderQueue();
      S.showMessage(message, "ok", t("%(id)s is now %(status)s.", { id: item.id, status: S.statusLabel(item.status).toLowerCase() }));
      const row = body.querySelector('tr[data-id="' + item.id + '"]');
      const badge = row && row.querySelector(".badge");
      if (badge) { badge.tabIndex = -1; badge.focus(); } else message.focus();
      refreshSummary();
      window.setTimeout(function () { load(); }, 1500);
      return true;
    } catch (err) {
      S.showMessage(message, "error", t("Could not update %(id)s: %(reason)s", { id: item.id, reason: err.message }));
      renderQueue();
      message.focus();
      return false;
    }
  }

  S.bindMultiUpload(uploadForm, {
    batchId: function () { return uploadBatch.value; },
    // Other workers see the write within about a second: load once more then.
    onUploaded: function () { load(); window.setTimeout(load, 1500); },
  });

  load();
})();
