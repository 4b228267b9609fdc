/* Batches: one page of GET /api/batches with the filters of the URL query; users the server
 * allows to (page.can_bulk_assign, leads) select rows and assign them in bulk (POST /api/batches/assign). */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;
  const page = JSON.parse(document.getElementById("batches-page").textContent);
  const canBulkAssign = page.can_bulk_assign;
  const FILTERS = ["status", "assignee", "q", "per_page"];
  const DEFAULT_PER_PAGE = "50";

  const form = document.getElementById("filters");
  const body = document.getElementById("batches-body");
  const pager = document.getElementById("batches-pager");
  const summary = document.getElementById("batches-summary");
  const message = document.getElementById("batches-message");
  const assigneeFilter = document.getElementById("f-assignee");
  const params = new URLSearchParams(window.location.search);
  const columns = canBulkAssign ? 8 : 7;
  let names = new Map();  // not an object: a username such as "toString" is just a key
  let currentItems = [];

  function ensureOption(select, value, label) {
    if (!value) return;
    const exists = Array.from(select.options).some(function (o) { return o.value === value; });
    if (!exists) select.appendChild(h("option", { value: value }, label || value));
  }

  function fillForm() {
    FILTERS.forEach(function (name) {
      const field = form.elements[name];
      const value = params.get(name);
      if (!field || value === null) return;
      if (field.tagName === "SELECT") ensureOption(field, value);
      field.value = value;
    });
  }

  /* Submitting the filters starts again at page 1 and leaves empty/default values out of the URL. */
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const next = new URLSearchParams();
    FILTERS.forEach(function (name) {
      const value = (form.elements[name].value || "").trim();
      if (value && !(name === "per_page" && value === DEFAULT_PER_PAGE)) next.set(name, value);
    });
    const query = next.toString();
    window.location.assign(window.location.pathname + (query ? "?" + query : ""));
  });

  function apiQuery() {
    const q = new URLSearchParams();
    FILTERS.concat(["page"]).forEach(function (name) {
      const value = params.get(name);
      if (value) q.set(name, value);
    });
    return q.toString();
  }

  function hasFilters() {
    return ["status", "assignee", "q"].some(function (name) { return params.get(name); });
  }

  function assigneeText(username) {
    if (!username) return h("span", { class: "muted" }, t("Unassigned"));
    return names.has(username) ? h("span", { title: username }, names.get(username)) : username;
  }

  function renderRows(envelope) {
    S.clear(body);
    currentItems = envelope.items;
    if (!envelope.items.length) {
      const text = envelope.total > 0 ? t("This page is past the end of the list.")
        : (hasFilters() ? t("No batches match these filters.") : t("There are no batches yet."));
      body.appendChild(h("tr", null, h("td", { colspan: columns, class: "empty" }, text,
        (hasFilters() || envelope.total > 0) ? [" ", h("a", { href: window.location.pathname }, t("Show all batches"))] : null)));
      return;
    }
    envelope.items.forEach(function (item) {
      const row = h("tr", { "data-id": item.id },
        canBulkAssign ? h("td", { class: "col-check" }, h("input", { type: "checkbox", class: "row-check", value: item.id,
          "aria-label": t("Select %(id)s", { id: item.id }) })) : null,
        h("th", { scope: "row" }, h("a", { href: S.batchUrl(item.id) }, item.id)),
        h("td", { class: "col-name" }, item.name || ""),
        h("td", null, S.badge(item.status)),
        h("td", null, assigneeText(item.assignee)),
        h("td", { class: "num" }, S.fmtNumber(item.mask_count) + " / " + S.fmtNumber(item.image_count)),
        h("td", { class: "col-progress" }, S.progressBar(item.progress)),
        h("td", { class: "col-updated" }, S.timeEl(item.updated_at)));
      body.appendChild(row);
    });
  }

  function batchCount(n) { return tn("%(n)s batch", "%(n)s batches", n, { n: S.fmtNumber(n) }); }

  function describeFilters(envelope) {
    const bits = [];
    if (params.get("status")) bits.push(t("status %(status)s", { status: S.statusLabel(params.get("status")).toLowerCase() }));
    const a = params.get("assignee");
    if (a) bits.push(a === "none" ? t("unassigned") : t("assigned to %(name)s", { name: names.get(a) || a }));
    if (params.get("q")) bits.push(t("starting with “%(text)s”", { text: params.get("q") }));
    return batchCount(envelope.total) + (bits.length ? " · " + bits.join(", ") : "");
  }

  async function load() {
    body.setAttribute("aria-busy", "true");
    try {
      const envelope = await S.api("GET", "/api/batches?" + apiQuery());
      renderRows(envelope);
      S.renderPager(pager, envelope, batchCount);
      summary.textContent = describeFilters(envelope);
      document.getElementById("batches-table").setAttribute("data-loaded", "true");
    } catch (err) {
      S.clear(body);
      body.appendChild(h("tr", null, h("td", { colspan: columns, class: "empty" }, t("The batches could not be loaded."))));
      pager.hidden = true;
      summary.textContent = "";
      S.showMessage(message, "error", [err.message, " ", h("a", { href: window.location.pathname }, t("Clear the filters"))]);
    } finally {
      body.removeAttribute("aria-busy");
      updateBulk();
    }
  }

  // ------------------------------------------------------------------ bulk assignment (leads)

  const selectAll = document.getElementById("select-all");
  const bulkCount = document.getElementById("bulk-count");
  const bulkAssignee = document.getElementById("bulk-assignee");
  const bulkButton = document.getElementById("bulk-assign");

  function selectedIds() {
    return Array.from(body.querySelectorAll(".row-check:checked")).map(function (c) { return c.value; });
  }

  function updateBulk() {
    if (!canBulkAssign) return;
    const ids = selectedIds();
    const boxes = body.querySelectorAll(".row-check");
    bulkCount.textContent = ids.length ? tn("%(n)s batch selected", "%(n)s batches selected", ids.length, { n: S.fmtNumber(ids.length) }) : t("No batches selected");
    selectAll.checked = boxes.length > 0 && ids.length === boxes.length;
    selectAll.indeterminate = ids.length > 0 && ids.length < boxes.length;
    bulkButton.disabled = !ids.length || !bulkAssignee.value;
  }

  function listOf(label, ids) {
    return ids && ids.length ? h("li", null, label + ": " + ids.join(", ")) : null;
  }

  async function bulkAssign() {
    const ids = selectedIds();
    const assignee = bulkAssignee.value === "__none__" ? null : bulkAssignee.value;
    if (!ids.length || !bulkAssignee.value) return;
    bulkButton.disabled = true;
    try {
      const r = await S.api("POST", "/api/batches/assign", { ids: ids, assignee: assignee });
      const who = assignee ? (names.get(assignee) || assignee) : null;
      const head = assignee ? tn("Assigned %(n)s batch to %(name)s.", "Assigned %(n)s batches to %(name)s.", r.assigned, { n: S.fmtNumber(r.assigned), name: who })
        : tn("Unassigned %(n)s batch.", "Unassigned %(n)s batches.", r.assigned, { n: S.fmtNumber(r.assigned) });
      const notes = [
        listOf(assignee ? t("Already assigned to %(name)s", { name: who }) : t("Already unassigned"), r.unchanged),
        listOf(t("Not changed because their work is handed in (completed or reviewed)"), r.not_assignable),
        listOf(t("No longer exist"), r.not_found),
      ].filter(Boolean);
      S.showMessage(message, notes.length ? "warn" : "ok", [h("strong", null, head), notes.length ? h("ul", null, notes) : null]);
      selectAll.checked = false;
      await load();
    } catch (err) {
      S.showMessage(message, "error", t("Could not assign: %(reason)s", { reason: err.message }));
    } finally {
      updateBulk();
    }
  }

  if (canBulkAssign) {
    selectAll.addEventListener("change", function () {
      body.querySelectorAll(".row-check").forEach(function (c) { c.checked = selectAll.checked; });
      updateBulk();
    });
    body.addEventListener("change", function (event) {
      if (event.target.classList.contains("row-check")) updateBulk();
    });
    bulkAssignee.addEventListener("change", updateBulk);
    bulkButton.addEventListener("click", bulkAssign);
  }

  async function loadSegmenters() {
    if (!canBulkAssign) return;
    try {
      const users = await S.api("GET", "/api/users?role=segmenter");
      names = new Map();
      users.forEach(function (u) {
        names.set(u.username, u.display_name);
        const label = u.display_name === u.username ? u.username : u.display_name + " (" + u.username + ")";
        assigneeFilter.appendChild(h("option", { value: u.username }, label));
        bulkAssignee.appendChild(h("option", { value: u.username }, label));
      });
      if (!users.length) S.showMessage(message, "info", t("There are no active segmenters to assign batches to yet."));
    } catch (err) {
      S.showMessage(message, "error", t("Could not load the segmenters: %(reason)s", { reason: err.message }));
    }
  }

  loadSegmenters().then(function () { fillForm(); return load(); });
})();
