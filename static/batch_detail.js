/* Batch detail: fields, timeline, the status actions this viewer may take (PATCH), the
 * assignment (leads), and the masks with download links and an upload form. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const page = JSON.parse(document.getElementById("batch-page").textContent);
  let batch = page.batch;
  let names = {};
  names[S.config.user.username] = S.config.user.display_name;
  const message = document.getElementById("detail-message");

  const TIMELINE = [
    ["created_at", "Created"], ["assigned_at", "Assigned"], ["started_at", "Started"],
    ["completed_at", "Completed"], ["reviewed_at", "Reviewed"], ["rejected_at", "Rejected"],
  ];

  function field(label, value) {
    return [h("dt", null, label), h("dd", null, value)];
  }

  function renderFields() {
    S.clear(document.getElementById("d-status-badge")).appendChild(S.badge(batch.status));
    const assignee = batch.assignee ? (names[batch.assignee] ? names[batch.assignee] + " (" + batch.assignee + ")" : batch.assignee)
      : h("span", { class: "muted" }, "Unassigned");
    const dl = S.clear(document.getElementById("d-fields"));
    [
      field("Name", batch.name || "—"),
      field("Status", S.badge(batch.status)),
      field("Segmenter", assignee),
      field("Images", S.fmtNumber(batch.image_count)),
      field("Masks", S.fmtNumber(batch.mask_count)),
      field("Progress", S.progressBar(batch.progress)),
      field("Source", (batch.metadata && batch.metadata.source) || "—"),
      field("Last updated", S.timeEl(batch.updated_at)),
    ].forEach(function (pair) { pair.forEach(function (node) { dl.appendChild(node); }); });
  }

  function renderTimeline() {
    const list = S.clear(document.getElementById("d-timeline"));
    const events = TIMELINE.filter(function (e) { return batch.metadata && batch.metadata[e[0]]; })
      .map(function (e) { return { label: e[1], at: batch.metadata[e[0]] }; })
      .sort(function (a, b) { return a.at < b.at ? -1 : a.at > b.at ? 1 : 0; });
    if (!events.length) { list.appendChild(h("li", { class: "muted" }, "No events recorded.")); return; }
    events.forEach(function (e) {
      list.appendChild(h("li", null, h("span", { class: "tl-label" }, e.label), " ", S.timeEl(e.at)));
    });
  }

  function renderActions() {
    const box = S.clear(document.getElementById("d-actions"));
    const actions = page.actions[batch.status] || [];
    actions.forEach(function (action, index) {
      box.appendChild(h("button", { type: "button", class: index === 0 ? "" : "secondary", "data-action": action.status,
        onclick: function () { changeStatus(action); } }, action.label));
    });
    const form = document.getElementById("d-assign");
    if (form) {
      form.hidden = page.reassignable.indexOf(batch.status) === -1;
      document.getElementById("d-assignee").value = batch.assignee || "";
    }
    if (!actions.length && (!form || form.hidden)) {
      box.appendChild(h("p", { class: "muted small" }, page.can_assign || batch.assignee === S.config.user.username
        ? "No status change is possible from " + S.statusLabel(batch.status).toLowerCase() + "."
        : "Only the segmenter of this batch or a lead can change it."));
    }
  }

  function renderMasks() {
    const body = S.clear(document.getElementById("masks-body"));
    document.getElementById("d-mask-count").textContent = "(" + S.fmtNumber(batch.masks.length) + ")";
    if (!batch.masks.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No masks yet.")));
      return;
    }
    batch.masks.forEach(function (mask) {
      const versions = mask.version_count > 1 ? " (version " + mask.version + " of " + mask.version_count + ")" : "";
      body.appendChild(h("tr", { "data-mask-id": mask.id },
        h("td", { class: "filename" }, mask.filename, versions ? h("span", { class: "muted small" }, versions) : null),
        h("td", { class: "num" }, S.fmtBytes(mask.length)),
        h("td", { class: "col-updated" }, S.timeEl(mask.uploadDate)),
        h("td", null, h("a", { href: "/api/masks/" + encodeURIComponent(mask.id), download: mask.filename.split("/").pop() },
          "Download", h("span", { class: "visually-hidden" }, " " + mask.filename)))));
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
    patch({ status: action.status }, function (b) { return "Done: the batch is now " + S.statusLabel(b.status).toLowerCase() + "."; });
  }

  const assignForm = document.getElementById("d-assign");
  if (assignForm) {
    assignForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const value = document.getElementById("d-assignee").value || null;
      patch({ assignee: value }, function (b) {
        return b.assignee ? "Assigned to " + (names[b.assignee] || b.assignee) + "." : "The batch is unassigned.";
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
    if (!page.can_assign) return;
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      const select = document.getElementById("d-assignee");
      users.forEach(function (u) {
        names[u.username] = u.display_name;
        select.appendChild(h("option", { value: u.username }, u.display_name === u.username ? u.username : u.display_name + " (" + u.username + ")"));
      });
      if (batch.assignee && !names[batch.assignee]) select.appendChild(h("option", { value: batch.assignee }, batch.assignee));
    } catch (err) {
      S.showMessage(message, "error", "Could not load the segmenters: " + err.message);
    }
  }

  render();
  loadSegmenters().then(render);
})();
