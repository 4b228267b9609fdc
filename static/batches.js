/* Batches: one page of GET /api/batches with the filters and sort of the URL query. Filters
 * apply as they change (search after a pause), stay in the URL and in the breadcrumb of the
 * batch pages. Users the server allows to (page.can_bulk_assign, leads) select rows (shift-click
 * for a range, or every batch matching the filters) and assign them (POST /api/batches/assign). */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;
  const page = JSON.parse(document.getElementById("batches-page").textContent);
  const canBulkAssign = page.can_bulk_assign;
  const FILTERS = ["status", "assignee", "q", "sort", "per_page"];
  const DEFAULTS = { per_page: "50", sort: "id" };
  const SEARCH_PAUSE_MS = 350;

  const form = document.getElementById("filters");
  const filtersBox = document.getElementById("filters-box");
  const body = document.getElementById("batches-body");
  const pager = document.getElementById("batches-pager");
  const summary = document.getElementById("batches-summary");
  const message = document.getElementById("batches-message");
  const results = document.getElementById("batches-results");
  const assigneeFilter = document.getElementById("f-assignee");
  const exportLink = document.getElementById("export-csv");
  const columns = canBulkAssign ? 8 : 7;
  let params = new URLSearchParams(window.location.search);
  let names = new Map();  // not an object: a username such as "toString" is just a key
  let lastEnvelope = null;
  let matching = false;  // every batch matching the filters is selected, not just checked rows
  let lastChecked = null;

  if (window.matchMedia("(max-width: 640px)").matches) filtersBox.open = false;

  /* An option for `value` in `select`; a placeholder made before the label was known gets it. */
  function ensureOption(select, value, label) {
    if (!value) return;
    const found = Array.from(select.options).find(function (o) { return o.value === value; });
    if (!found) select.appendChild(h("option", { value: value }, label || value));
    else if (label && found.textContent === value) found.textContent = label;
  }

  function fillForm() {
    FILTERS.forEach(function (name) {
      const field = form.elements[name];
      const value = params.get(name) || DEFAULTS[name] || "";
      if (field.tagName === "SELECT") ensureOption(field, value);
      field.value = value;
    });
    markSort();
  }

  /* The filters of the form as a query: empty and default values left out, page 1. */
  function formQuery() {
    const next = new URLSearchParams();
    FILTERS.forEach(function (name) {
      const value = (form.elements[name].value || "").trim();
      if (value && value !== DEFAULTS[name]) next.set(name, value);
    });
    return next;
  }

  function remember() {
    try { window.sessionStorage.setItem("segdash.batches.query", window.location.search); } catch (err) { /* private mode */ }
  }

  /* Apply the form's filters in the page: URL, list and summary; focus goes to the results. */
  async function apply(options) {
    const next = formQuery();
    if (next.toString() === params.toString() && !(options && options.force)) return;
    params = next;
    const query = params.toString();
    const url = window.location.pathname + (query ? "?" + query : "");
    if (options && options.replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    remember();
    matching = false;
    markSort();
    S.showMessage(message, null, null);
    await load();
    if (!(options && options.keepFocus)) focusResults();
  }

  function focusResults() {
    const first = body.querySelector("tr[data-id]");
    if (first) { S.rovingTable(body); first.focus(); } else results.focus();
  }

  let searchTimer = null;
  form.addEventListener("submit", function (event) { event.preventDefault(); window.clearTimeout(searchTimer); apply({ force: true }); });
  form.addEventListener("change", function (event) {
    if (event.target.name === "q") return;
    apply();
  });
  form.elements.q.addEventListener("input", function () {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(function () { apply({ replace: true, keepFocus: true }); }, SEARCH_PAUSE_MS);
  });
  window.addEventListener("popstate", function () {
    params = new URLSearchParams(window.location.search);
    fillForm();
    remember();
    load();
  });

  // Column headers sort too: a second click on the sorted column reverses it.
  document.querySelectorAll("[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      const key = button.getAttribute("data-sort");
      const current = params.get("sort") || "id";
      form.elements.sort.value = current === key ? "-" + key : key;
      apply().then(function () { button.focus(); });
    });
  });

  function markSort() {
    const current = params.get("sort") || "id";
    document.querySelectorAll("th[data-sort-key]").forEach(function (th) {
      const key = th.getAttribute("data-sort-key");
      if (current === key) th.setAttribute("aria-sort", "ascending");
      else if (current === "-" + key) th.setAttribute("aria-sort", "descending");
      else th.removeAttribute("aria-sort");
    });
    const active = ["status", "assignee", "q"].filter(function (n) { return params.get(n); }).length;
    document.getElementById("filters-active").textContent = active ? t("(%(n)s active)", { n: S.fmtNumber(active) }) : "";
    const exportQuery = new URLSearchParams(params);
    exportQuery.delete("per_page");
    exportQuery.delete("page");
    exportLink.href = "/api/export/batches.csv" + (exportQuery.toString() ? "?" + exportQuery.toString() : "");
  }

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
    if (!envelope.items.length) {
      const text = envelope.total > 0 ? t("This page is past the end of the list.")
        : (hasFilters() ? t("No batches match these filters.") : t("There are no batches yet."));
      body.appendChild(h("tr", null, h("td", { colspan: columns, class: "empty" }, text,
        (hasFilters() || envelope.total > 0) ? [" ", h("a", { href: window.location.pathname }, t("Show all batches"))] : null)));
      return;
    }
    envelope.items.forEach(function (item) {
      body.appendChild(h("tr", { "data-id": item.id, "data-status": item.status },
        canBulkAssign ? h("td", { class: "col-check" }, h("input", { type: "checkbox", class: "row-check", value: item.id,
          "aria-label": t("Select %(id)s", { id: item.id }) })) : null,
        h("th", { scope: "row" }, h("a", { href: S.batchUrl(item.id) }, item.id)),
        h("td", { class: "col-name", "data-label": t("Name") }, item.name || ""),
        h("td", { "data-label": t("Status") }, S.badge(item.status)),
        h("td", { "data-label": t("Segmenter") }, assigneeText(item.assignee)),
        h("td", { class: "num", "data-label": t("Masks") }, S.fmtNumber(item.mask_count) + " / " + S.fmtNumber(item.image_count)),
        h("td", { class: "col-progress", "data-label": t("Progress") }, S.progressBar(item.progress)),
        h("td", { class: "col-updated", "data-label": t("Updated") }, S.timeEl(item.updated_at))));
    });
    S.rovingTable(body);
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

  /* Fetch and show the list; `before` (a promise) must settle first, e.g. the segmenters' names. */
  async function load(before) {
    body.setAttribute("aria-busy", "true");
    try {
      const both = await Promise.all([S.api("GET", "/api/batches?" + apiQuery()), before]);
      const envelope = both[0];
      lastEnvelope = envelope;
      S.keepingFocus(body, function () { renderRows(envelope); });
      S.renderPager(pager, envelope, batchCount);
      summary.textContent = describeFilters(envelope);
      document.getElementById("batches-table").setAttribute("data-loaded", "true");
    } catch (err) {
      lastEnvelope = null;
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

  const bulkbar = document.getElementById("bulkbar");
  const selectAll = document.getElementById("select-all");
  const selectMatching = document.getElementById("select-matching");
  const bulkCount = document.getElementById("bulk-count");
  const bulkAssignee = document.getElementById("bulk-assignee");
  const bulkButton = document.getElementById("bulk-assign");

  function boxes() { return Array.from(body.querySelectorAll(".row-check")); }
  function selectedIds() { return boxes().filter(function (c) { return c.checked; }).map(function (c) { return c.value; }); }

  function updateBulk() {
    if (!canBulkAssign) return;
    const ids = selectedIds();
    const all = boxes();
    const total = lastEnvelope ? lastEnvelope.total : 0;
    if (matching && ids.length !== all.length) matching = false;
    bulkbar.hidden = !ids.length;
    bulkCount.textContent = matching ? t("All %(n)s matching batches selected", { n: S.fmtNumber(total) })
      : (ids.length ? tn("%(n)s batch selected", "%(n)s batches selected", ids.length, { n: S.fmtNumber(ids.length) }) : t("No batches selected"));
    selectAll.checked = all.length > 0 && ids.length === all.length;
    selectAll.indeterminate = ids.length > 0 && ids.length < all.length;
    const more = all.length > 0 && ids.length === all.length && total > all.length;
    selectMatching.hidden = !more;
    selectMatching.textContent = matching ? t("Select only this page") : t("Select all %(n)s matching", { n: S.fmtNumber(total) });
    bulkButton.disabled = !ids.length || !bulkAssignee.value;
    bulkButton.textContent = matching ? t("Assign all %(n)s", { n: S.fmtNumber(total) }) : t("Assign selected");
  }

  function listOf(label, ids) {
    if (!ids || !ids.length) return null;
    const shown = ids.slice(0, 30).join(", ") + (ids.length > 30 ? " … (" + S.fmtNumber(ids.length) + ")" : "");
    return h("li", null, label + ": " + shown);
  }

  function currentFilter() {
    const filter = {};
    ["status", "assignee", "q"].forEach(function (name) { if (params.get(name)) filter[name] = params.get(name); });
    return filter;
  }

  async function bulkAssign() {
    const ids = selectedIds();
    const assignee = bulkAssignee.value === "__none__" ? null : bulkAssignee.value;
    if (!ids.length || !bulkAssignee.value) return;
    bulkButton.disabled = true;
    const request = matching ? { filter: currentFilter(), assignee: assignee } : { ids: ids, assignee: assignee };
    try {
      const r = await S.api("POST", "/api/batches/assign", request);
      const who = assignee ? (names.get(assignee) || assignee) : null;
      const head = assignee ? tn("Assigned %(n)s batch to %(name)s.", "Assigned %(n)s batches to %(name)s.", r.assigned, { n: S.fmtNumber(r.assigned), name: who })
        : tn("Unassigned %(n)s batch.", "Unassigned %(n)s batches.", r.assigned, { n: S.fmtNumber(r.assigned) });
      const notes = [
        listOf(assignee ? t("Already assigned to %(name)s", { name: who }) : t("Already unassigned"), r.unchanged),
        listOf(t("Not changed because their work is handed in (completed or reviewed)"), r.not_assignable),
        listOf(t("No longer exist"), r.not_found),
      ].filter(Boolean);
      matching = false;
      selectAll.checked = false;
      await load();
      loadSegmenters();
      S.showMessage(message, notes.length ? "warn" : "ok", [h("strong", null, head), notes.length ? h("ul", null, notes) : null]);
      message.focus();
    } catch (err) {
      S.showMessage(message, "error", t("Could not assign: %(reason)s", { reason: err.message }));
      message.focus();
    } finally {
      updateBulk();
    }
  }

  if (canBulkAssign) {
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (c) { c.checked = selectAll.checked; });
      matching = false;
      updateBulk();
    });
    body.addEventListener("click", function (event) {
      const box = event.target.closest && event.target.closest(".row-check");
      if (!box) return;
      const all = boxes();
      if (event.shiftKey && lastChecked && all.indexOf(lastChecked) !== -1) {
        const a = all.indexOf(lastChecked), b = all.indexOf(box);
        all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (c) { c.checked = box.checked; });
      }
      lastChecked = box;
      updateBulk();
    });
    body.addEventListener("change", function (event) {
      if (event.target.classList.contains("row-check")) updateBulk();
    });
    selectMatching.addEventListener("click", function () {
      matching = !matching;
      updateBulk();
      bulkCount.focus();
    });
    bulkAssignee.addEventListener("change", updateBulk);
    bulkButton.addEventListener("click", bulkAssign);
  }

  function segmenterLabel(u, open) {
    const name = u.display_name === u.username ? u.username : u.display_name + " (" + u.username + ")";
    return open === undefined ? name : t("%(name)s · %(n)s open", { name: name, n: S.fmtNumber(open) });
  }

  /* Segmenters for the filter and the assign control, with their open batches (workload). */
  async function loadSegmenters() {
    if (!canBulkAssign) return;
    try {
      const both = await Promise.all([S.api("GET", "/api/users?role=segmenter"), S.api("GET", "/api/users/workload")]);
      const users = both[0];
      const workload = new Map(Object.entries(both[1]));  // keyed by username: a Map, not object lookups
      const chosen = bulkAssignee.value;
      Array.from(bulkAssignee.options).slice(2).forEach(function (o) { o.remove(); });
      names = new Map();
      users.forEach(function (u) {
        names.set(u.username, u.display_name);
        ensureOption(assigneeFilter, u.username, segmenterLabel(u));
        bulkAssignee.appendChild(h("option", { value: u.username }, segmenterLabel(u, workload.get(u.username) || 0)));
      });
      bulkAssignee.value = chosen;
      if (!users.length) S.showMessage(message, "info", t("There are no active segmenters to assign batches to yet."));
    } catch (err) {
      S.showMessage(message, "error", t("Could not load the segmenters: %(reason)s", { reason: err.message }));
    }
  }

  remember();
  fillForm();
  load(loadSegmenters().then(fillForm));  // the list and the segmenters are fetched in parallel
})();
