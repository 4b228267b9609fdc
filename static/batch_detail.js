/* Batch detail: fields, timeline, the actions the server offers this viewer (status changes
 * by PATCH, the assignment, the upload form), and the masks with download links.
 * What is offered comes from page.offers (pages.offer_table, decided by policy.py), one
 * entry per status; this script only picks the entry of the batch's current status. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t;
  const page = JSON.parse(document.getElementById("batch-page").textContent);
  let batch = page.batch;
  // A Map, not an object: a username such as "toString" or "__proto__" is just a key.
  const names = new Map([[S.config.user.username, S.config.user.display_name]]);
  const message = document.getElementById("detail-message");

  const TIMELINE = [
    ["created_at", t("Created")], ["assigned_at", t("Assigned")], ["started_at", t("Started")],
    ["completed_at", t("Completed")], ["reviewed_at", t("Reviewed")], ["rejected_at", t("Rejected")],
  ];

  function field(label, value) {
    return [h("dt", null, label), h("dd", null, value)];
  }

  function renderFields() {
    S.clear(document.getElementById("d-status-badge")).appendChild(S.badge(batch.status));
    const assignee = batch.assignee ? (names.has(batch.assignee) ? names.get(batch.assignee) + " (" + batch.assignee + ")" : batch.assignee)
      : h("span", { class: "muted" }, t("Unassigned"));
    const dl = S.clear(document.getElementById("d-fields"));
    [
      field(t("Name"), batch.name || "—"),
      field(t("Status"), S.badge(batch.status)),
      field(t("Segmenter"), assignee),
      field(t("Images"), S.fmtNumber(batch.image_count)),
      field(t("Masks"), S.fmtNumber(batch.mask_count)),
      field(t("Progress"), S.progressBar(batch.progress)),
      field(t("Source"), S.sourceLabel(batch.metadata && batch.metadata.source)),
      field(t("Last updated"), S.timeEl(batch.updated_at)),
    ].forEach(function (pair) { pair.forEach(function (node) { dl.appendChild(node); }); });
  }

  function renderTimeline() {
    const list = S.clear(document.getElementById("d-timeline"));
    const events = TIMELINE.filter(function (e) { return batch.metadata && batch.metadata[e[0]]; })
      .map(function (e) { return { label: e[1], at: batch.metadata[e[0]] }; })
      .sort(function (a, b) { return a.at < b.at ? -1 : a.at > b.at ? 1 : 0; });
    if (!events.length) { list.appendChild(h("li", { class: "muted" }, t("No events recorded."))); return; }
    events.forEach(function (e) {
      list.appendChild(h("li", null, h("span", { class: "tl-label" }, e.label), " ", S.timeEl(e.at)));
    });
  }

  /* The server's offer for the batch as it is now; null when it was computed for another assignee. */
  function currentOffer() {
    if (!page.offers_any_assignee && (batch.assignee || null) !== (page.offers_assignee || null)) return null;
    return page.offers[batch.status] || { actions: [], change_note: null, upload_note: null };
  }

  function offered(offer, kind) {
    return offer.actions.filter(function (action) { return action.action === kind; });
  }

  function renderActions() {
    const offer = currentOffer();
    if (!offer) { window.location.reload(); return; }
    const box = S.clear(document.getElementById("d-actions"));
    const changes = offered(offer, "status");
    changes.forEach(function (action, index) {
      box.appendChild(h("button", { type: "button", class: index === 0 ? "" : "secondary", "data-action": action.status,
        onclick: function () { changeStatus(action); } }, action.text));
    });
    const form = document.getElementById("d-assign");
    const canAssign = offered(offer, "assign").length > 0;
    if (form) {
      form.hidden = !canAssign;
      document.getElementById("d-assignee").value = batch.assignee || "";
    }
    if (!changes.length && !canAssign) {
      box.appendChild(h("p", { class: "muted small" }, offer.change_note ||
        t("No status change is possible from %(status)s.", { status: S.statusLabel(batch.status).toLowerCase() })));
    }
    const upload = document.getElementById("d-upload");
    const canUpload = offered(offer, "upload").length > 0;
    if (upload) upload.hidden = !canUpload;
    const note = document.getElementById("d-upload-note");
    note.hidden = canUpload;
    note.textContent = canUpload ? "" : (offer.upload_note || "");
  }

  function renderMasks() {
    const body = S.clear(document.getElementById("masks-body"));
    document.getElementById("d-mask-count").textContent = "(" + S.fmtNumber(batch.masks.length) + ")";
    if (!batch.masks.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, t("No masks yet."))));
      return;
    }
    batch.masks.forEach(function (mask) {
      // A stored file may have no name (files written by other tools): show and save it anyway.
      const filename = typeof mask.filename === "string" && mask.filename ? mask.filename : t("(no name)");
      const saveAs = typeof mask.filename === "string" && mask.filename ? mask.filename.split("/").pop() : "mask";
      const versions = mask.version_count > 1
        ? " " + t("(version %(version)s of %(count)s)", { version: mask.version, count: mask.version_count }) : "";
      body.appendChild(h("tr", { "data-mask-id": mask.id },
        h("td", { class: "filename" }, filename, versions ? h("span", { class: "muted small" }, versions) : null),
        h("td", { class: "num" }, S.fmtBytes(mask.length)),
        h("td", { class: "col-updated" }, S.timeEl(mask.uploadDate)),
        h("td", null, h("a", { href: "/api/masks/" + encodeURIComponent(mask.id), download: saveAs },
          t("Download"), h("span", { class: "visually-hidden" }, " " + filename)))));
    });
  }

  function render() {
    renderFields();
    renderTimeline();
    renderActions();
    renderMasks();
  }

  async function patch(changes, done) {
    document.querySelectorAll("#d-actions button, #d-assign button").forEach(function (b) { b.disabled = true; });
    try {
      batch = await S.api("PATCH", "/api/batches/" + encodeURIComponent(batch.id), changes);
      render();
      S.showMessage(message, "ok", done(batch));
    } catch (err) {
      S.showMessage(message, "error", err.message);
      renderActions();
    }
  }

  function changeStatus(action) {
    patch({ status: action.status }, function (b) { return t("Done: the batch is now %(status)s.", { status: S.statusLabel(b.status).toLowerCase() }); });
  }

  const assignForm = document.getElementById("d-assign");
  if (assignForm) {
    assignForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const value = document.getElementById("d-assignee").value || null;
      patch({ assignee: value }, function (b) {
        return b.assignee ? t("Assigned to %(name)s.", { name: names.get(b.assignee) || b.assignee }) : t("The batch is unassigned.");
      });
    });
  }

  const uploadForm = document.querySelector("[data-upload]");
  if (uploadForm) {
    S.bindUploadForm(uploadForm, {
      batchId: function () { return batch.id; },
      onUploaded: async function (stored) {
        if (stored.batch_id !== batch.id) return;
        // A name the batch has becomes a new version: the server's detail says which masks are current.
        try {
          batch = await S.api("GET", "/api/batches/" + encodeURIComponent(batch.id));
        } catch (err) {
          S.showMessage(message, "error", err.message);
          return;
        }
        renderFields();
        renderMasks();
      },
    });
  }

  async function loadSegmenters() {
    if (!document.getElementById("d-assign")) return;
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      const select = document.getElementById("d-assignee");
      users.forEach(function (u) {
        names.set(u.username, u.display_name);
        select.appendChild(h("option", { value: u.username }, u.display_name === u.username ? u.username : u.display_name + " (" + u.username + ")"));
      });
      if (batch.assignee && !names.has(batch.assignee)) select.appendChild(h("option", { value: batch.assignee }, batch.assignee));
    } catch (err) {
      S.showMessage(message, "error", t("Could not load the segmenters: %(reason)s", { reason: err.message }));
    }
  }

  render();
  loadSegmenters().then(render);
})();
