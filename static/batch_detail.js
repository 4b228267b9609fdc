/* Batch detail: fields, timeline, the actions the server offers this viewer (status changes
 * by PATCH, the assignment, the upload form), the history, and the masks: a gallery of
 * previews with a large view, and the files with download links.
 * What is offered comes from page.offers (pages.offer_table, decided by policy.py), one
 * entry per status; this script only picks the entry of the batch's current status.
 * Changes that need a reason ask for one in a dialog; completing with missing masks asks
 * for a confirmation when the server answers `incomplete_masks`. In review mode (?review=1,
 * from the review queue) approving or rejecting opens the next batch to review. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t;
  const tn = S.tn;
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

  const REVIEW_TEXT = new Map([["review", t("Approve")], ["reject", t("Reject…")]]);

  function actionText(action) {
    return action.text + (action.needs_reason && action.label !== "reject" ? "…" : "");
  }

  function renderReviewBar(changes) {
    const box = document.getElementById("review-actions");
    if (!box) return;
    S.clear(box);
    const decisions = changes.filter(function (action) { return REVIEW_TEXT.has(action.label); });
    decisions.forEach(function (action, index) {
      box.appendChild(h("button", { type: "button", class: index === 0 ? "" : "secondary", "data-review": action.label,
        onclick: function () { changeStatus(action); } }, REVIEW_TEXT.get(action.label)));
    });
    box.appendChild(decisions.length
      ? h("a", { href: page.review_url + "?after=" + encodeURIComponent(batch.id), class: "button-link", "data-review": "skip" }, t("Skip"))
      : h("a", { href: page.review_url, class: "button-link" }, t("Next batch to review")));
  }

  function renderActions() {
    const offer = currentOffer();
    if (!offer) { window.location.reload(); return; }
    const box = S.clear(document.getElementById("d-actions"));
    const changes = offered(offer, "status");
    renderReviewBar(changes);
    changes.forEach(function (action, index) {
      box.appendChild(h("button", { type: "button", class: index === 0 ? "" : "secondary", "data-action": action.status,
        onclick: function () { changeStatus(action); } }, actionText(action)));
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

  // What each history action says, after who did it ("%(who)s rejected the batch").
  const ACTION_WORDS = new Map([
    ["start", t("%(who)s started the work")], ["complete", t("%(who)s completed the batch")],
    ["review", t("%(who)s approved the batch")], ["reject", t("%(who)s rejected the batch")],
    ["restart", t("%(who)s restarted the work")], ["reopen", t("%(who)s reopened it for its segmenter")],
    ["reopen_review", t("%(who)s reopened it for review")], ["assign", t("%(who)s assigned the batch")],
    ["unassign", t("%(who)s unassigned the batch")],
  ]);

  function who(username) {
    return username ? (names.get(username) || username) : t("nobody");
  }

  function renderHistory() {
    const list = S.clear(document.getElementById("d-history"));
    const entries = batch.history || [];
    if (!entries.length) { list.appendChild(h("li", { class: "muted" }, t("No changes recorded yet."))); return; }
    entries.forEach(function (entry) {
      const from = entry.from || {}, to = entry.to || {};
      const change = from.status !== to.status ? S.statusLabel(from.status) + " → " + S.statusLabel(to.status) : null;
      const assignee = from.assignee !== to.assignee ? t("segmenter: %(before)s → %(after)s", { before: who(from.assignee), after: who(to.assignee) }) : null;
      list.appendChild(h("li", { "data-action": entry.action },
        h("span", { class: "h-what" }, (ACTION_WORDS.get(entry.action) || "%(who)s " + entry.action).replace("%(who)s", who(entry.actor))), " · ",
        S.timeEl(entry.at),
        h("div", { class: "muted small" }, [change, assignee].filter(Boolean).join(" · ")),
        entry.reason ? h("p", { class: "h-reason" }, t("Reason: %(reason)s", { reason: entry.reason })) : null));
    });
  }

  function renderRejection() {
    const slot = document.getElementById("d-rejection");
    const last = batch.last_rejection;
    if (!last || !last.reason || ["rejected", "in_progress"].indexOf(batch.status) === -1) { S.clear(slot); return; }
    S.showMessage(slot, "warn", [h("strong", null, t("Rejected by %(who)s on %(date)s:", { who: who(last.by), date: S.fmtDate(last.at) })),
      h("p", { class: "rejection-reason", "data-rejection-reason": "" }, last.reason)]);
  }

  /* The number of versions a mask has, when the detail says (`version_count`, or its list of
   * older versions besides the current one); null when it does not. */
  function versionCount(mask) {
    if (typeof mask.version_count === "number") return mask.version_count;
    if (Array.isArray(mask.older_versions)) return mask.older_versions.length + 1;
    if (Array.isArray(mask.versions)) return mask.versions.length;
    return null;
  }

  /* A stored file may have no name (files written by other tools): show and save it anyway. */
  function maskName(mask) {
    return typeof mask.filename === "string" && mask.filename ? mask.filename : t("(no name)");
  }

  function saveAsName(mask) {
    return typeof mask.filename === "string" && mask.filename ? mask.filename.split("/").pop() : "mask";
  }

  function previewUrl(mask, size) {
    return "/api/masks/" + encodeURIComponent(mask.id) + "/preview?size=" + size;
  }

  function renderGallery() {
    const list = S.clear(document.getElementById("d-gallery"));
    if (!batch.masks.length) { list.appendChild(h("li", { class: "muted" }, t("No masks yet."))); return; }
    batch.masks.forEach(function (mask, index) {
      const frame = h("span", { class: "thumb-frame" });
      const img = h("img", { src: previewUrl(mask, 256), loading: "lazy", alt: "", width: 256, height: 256 });
      img.addEventListener("load", function () { img.removeAttribute("width"); img.removeAttribute("height"); });
      img.addEventListener("error", function () { S.clear(frame).appendChild(document.createTextNode(t("No preview"))); });
      frame.appendChild(img);
      const count = versionCount(mask);
      const meta = [];
      if (mask.version) meta.push(t("version %(n)s", { n: mask.version }));
      if (count && count > 1) meta.push(tn("%(n)s version", "%(n)s versions", count, { n: S.fmtNumber(count) }));
      list.appendChild(h("li", null, h("button", { type: "button", class: "thumb", "data-mask-id": mask.id,
        "aria-label": t("Open %(name)s in the large view", { name: maskName(mask) }), onclick: function (event) { viewer.open(index, event.currentTarget); } },
        frame, h("span", { class: "thumb-name" }, maskName(mask).split("/").pop()),
        meta.length ? h("span", { class: "thumb-meta" }, meta.join(" · ")) : null)));
    });
  }

  function renderMasks() {
    renderGallery();
    const body = S.clear(document.getElementById("masks-body"));
    document.getElementById("d-mask-count").textContent = "(" + S.fmtNumber(batch.masks.length) + ")";
    if (!batch.masks.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, t("No masks yet."))));
      return;
    }
    batch.masks.forEach(function (mask) {
      const filename = maskName(mask);
      const saveAs = saveAsName(mask);
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
    renderRejection();
    renderMasks();
    renderHistory();
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

  /* --- the reason dialog (native <dialog>: modal, Esc closes, focus returns to the opener) --- */

  function askReason(action) {
    const dialog = document.getElementById("reason-dialog");
    const text = document.getElementById("reason-text");
    const count = document.getElementById("reason-count");
    const error = document.getElementById("reason-error");
    const opener = document.activeElement;
    document.getElementById("reason-title").textContent = t("%(action)s: say why", { action: action.text });
    document.getElementById("reason-submit").textContent = action.text;
    text.value = "";
    S.clear(error);
    count.textContent = S.fmtNumber(0) + " / " + S.fmtNumber(1000);
    return new Promise(function (resolve) {
      function onInput() { count.textContent = S.fmtNumber(text.value.length) + " / " + S.fmtNumber(1000); }
      function finish(value) {
        text.removeEventListener("input", onInput);
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("close", onClose);
        if (dialog.open) dialog.close();
        if (opener && opener.focus && document.contains(opener)) opener.focus();
        resolve(value);
      }
      function onSubmit(event) {
        event.preventDefault();
        const reason = text.value.trim();
        if (!reason) { S.showMessage(error, "error", t("Write a reason (up to %(n)s characters).", { n: S.fmtNumber(1000) })); text.focus(); return; }
        finish(text.value);
      }
      function onCancel() { finish(null); }
      function onClose() { finish(null); }
      const form = document.getElementById("reason-form");
      const cancel = document.getElementById("reason-cancel");
      text.addEventListener("input", onInput);
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("close", onClose);
      dialog.showModal();
      text.focus();
    });
  }

  async function changeStatus(action) {
    const changes = { status: action.status };
    if (action.needs_reason) {
      const reason = await askReason(action);
      if (reason === null) return;
      changes.reason = reason;
    }
    document.querySelectorAll("#d-actions button, #d-assign button, #review-actions button").forEach(function (b) { b.disabled = true; });
    try {
      const updated = await S.changeBatchStatus(batch.id, changes);
      if (!updated) {
        renderActions();
        S.showMessage(message, "info", t("Not completed: the batch is still %(status)s.", { status: S.statusLabel(batch.status).toLowerCase() }));
        return;
      }
      batch = updated;
      render();
    } catch (err) {
      S.showMessage(message, "error", err.message);
      renderActions();
      return;
    }
    if (page.review && (batch.status === "reviewed" || batch.status === "rejected")) {
      S.showMessage(message, "ok", t("Done: %(id)s is %(status)s. Opening the next batch to review…", { id: batch.id, status: S.statusLabel(batch.status).toLowerCase() }));
      window.location.assign(page.review_url);
      return;
    }
    S.showMessage(message, "ok", t("Done: the batch is now %(status)s.", { status: S.statusLabel(batch.status).toLowerCase() }));
  }

  /* --- the large view: zoom, previous/next by keyboard, focus back to the thumbnail --- */

  const viewer = (function () {
    const dialog = document.getElementById("viewer");
    const image = document.getElementById("viewer-image");
    const stage = document.getElementById("viewer-stage");
    const ZOOMS = [1, 1.5, 2, 3, 4, 6, 8];
    let index = 0, zoom = 0, opener = null, fitWidth = 0;

    function show() {
      const mask = batch.masks[index];
      if (!mask) return;
      zoom = 0;
      applyZoom();
      image.src = previewUrl(mask, 1024);
      image.alt = t("Mask %(name)s", { name: maskName(mask) });
      document.getElementById("viewer-title").textContent = maskName(mask);
      document.getElementById("viewer-position").textContent = t("%(n)s of %(total)s", { n: S.fmtNumber(index + 1), total: S.fmtNumber(batch.masks.length) });
      const download = document.getElementById("viewer-download");
      download.href = "/api/masks/" + encodeURIComponent(mask.id);
      download.setAttribute("download", saveAsName(mask));
      document.getElementById("viewer-prev").disabled = index === 0;
      document.getElementById("viewer-next").disabled = index === batch.masks.length - 1;
    }

    function applyZoom() {
      const factor = ZOOMS[zoom];
      if (factor === 1) {
        stage.classList.remove("zoomed");
        image.style.width = "";
      } else {
        if (!stage.classList.contains("zoomed")) {  // the width the image has when it fits the stage
          const natural = { w: image.naturalWidth || 1, h: image.naturalHeight || 1 };
          fitWidth = natural.w * Math.min(stage.clientWidth / natural.w, stage.clientHeight / natural.h);
        }
        stage.classList.add("zoomed");
        image.style.width = Math.round(fitWidth * factor) + "px";
      }
      document.getElementById("viewer-zoom").textContent = S.fmtPercent(factor * 100);
      document.getElementById("viewer-zoom-out").disabled = zoom === 0;
      document.getElementById("viewer-zoom-in").disabled = zoom === ZOOMS.length - 1;
    }

    function step(delta) {
      const target = index + delta;
      if (target < 0 || target >= batch.masks.length) return;
      index = target;
      show();
    }

    function setZoom(level) {
      zoom = Math.max(0, Math.min(ZOOMS.length - 1, level));
      applyZoom();
    }

    document.getElementById("viewer-prev").addEventListener("click", function () { step(-1); });
    document.getElementById("viewer-next").addEventListener("click", function () { step(1); });
    document.getElementById("viewer-zoom-in").addEventListener("click", function () { setZoom(zoom + 1); });
    document.getElementById("viewer-zoom-out").addEventListener("click", function () { setZoom(zoom - 1); });
    document.getElementById("viewer-close").addEventListener("click", function () { dialog.close(); });
    image.addEventListener("dblclick", function () { setZoom(zoom === 0 ? 2 : 0); });
    dialog.addEventListener("keydown", function (event) {
      if (event.target.tagName === "A" && event.key === "Enter") return;
      const keys = { ArrowLeft: function () { step(-1); }, ArrowRight: function () { step(1); },
        "+": function () { setZoom(zoom + 1); }, "=": function () { setZoom(zoom + 1); },
        "-": function () { setZoom(zoom - 1); }, "0": function () { setZoom(0); } };
      if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
    });
    dialog.addEventListener("close", function () {
      image.removeAttribute("src");
      const thumb = document.querySelector('#d-gallery [data-mask-id="' + (batch.masks[index] || {}).id + '"]');
      const target = thumb || opener;
      if (target && document.contains(target)) target.focus();
    });

    return {
      open: function (at, from) {
        index = at;
        opener = from || null;
        show();
        dialog.showModal();
        document.getElementById("viewer-close").focus();
      },
    };
  })();

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
    if (!document.getElementById("d-assign")) return;  // only leads get the list of segmenters
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
