/* Keyboard use of every page: tables with one Tab stop (roving tabindex; arrow keys or j/k move
 * between rows, ←/→ between the row's controls, Enter opens, Space selects), page shortcuts
 * registered with SegDash.shortcut(), and a "?" overlay listing them. */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t;
  const shortcuts = [];
  const CONTROLS = "a[href], button:not(:disabled), input:not(:disabled), select:not(:disabled)";

  function rows(tbody) { return Array.from(tbody.querySelectorAll("tr[data-id]")); }

  /* Make `tbody`'s rows (tr[data-id]) one Tab stop; call again after re-rendering the rows. */
  function rovingTable(tbody) {
    const all = rows(tbody);
    const current = all.find(function (r) { return r.getAttribute("tabindex") === "0"; }) || all[0];
    all.forEach(function (row) {
      row.tabIndex = row === current ? 0 : -1;
      row.querySelectorAll(CONTROLS).forEach(function (c) { c.tabIndex = -1; });
    });
    if (tbody.dataset.roving) return;
    tbody.dataset.roving = "true";
    tbody.addEventListener("keydown", function (event) { onKey(tbody, event); });
    tbody.addEventListener("focusin", function (event) {
      const row = event.target.closest("tr[data-id]");
      if (row) setCurrent(tbody, row, false);
    });
  }

  function setCurrent(tbody, row, focus) {
    rows(tbody).forEach(function (r) { r.tabIndex = r === row ? 0 : -1; });
    if (focus) row.focus();
  }

  function moveRow(tbody, delta) {
    const all = rows(tbody);
    if (!all.length) return;
    const active = document.activeElement && document.activeElement.closest && document.activeElement.closest("tr[data-id]");
    if (!active || !tbody.contains(active)) {  // from outside the table: to its current row
      setCurrent(tbody, all.find(function (r) { return r.getAttribute("tabindex") === "0"; }) || all[0], true);
      return;
    }
    const next = all[Math.max(0, Math.min(all.length - 1, all.indexOf(active) + delta))];
    setCurrent(tbody, next, true);
  }

  function onKey(tbody, event) {
    const row = event.target.closest("tr[data-id]");
    if (!row || event.altKey || event.ctrlKey || event.metaKey) return;
    const onRow = event.target === row;
    const controls = Array.from(row.querySelectorAll(CONTROLS));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveRow(tbody, event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      const all = rows(tbody);
      setCurrent(tbody, event.key === "Home" ? all[0] : all[all.length - 1], true);
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      if (!controls.length || (event.target.tagName === "SELECT")) return;
      event.preventDefault();
      const at = controls.indexOf(event.target);
      const next = event.key === "ArrowRight" ? at + 1 : at - 1;
      if (next < 0) row.focus(); else controls[Math.min(next, controls.length - 1)].focus();
    } else if (event.key === "Enter" && onRow) {
      const link = row.querySelector("a[href]");
      if (link) { event.preventDefault(); link.click(); }
    } else if (event.key === " " && onRow) {
      const box = row.querySelector('input[type="checkbox"]');
      if (box) {
        event.preventDefault();
        box.click();
      }
    } else if (event.key === "Escape" && !onRow) {
      row.focus();
    }
  }

  /* Register a page shortcut: `key` (one character), what it does (for the overlay), and `run`. */
  function shortcut(key, description, run) { shortcuts.push({ key: key, description: description, run: run }); }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
  }

  let overlay = null;
  function showHelp() {
    if (!overlay) {
      const list = h("dl", { class: "keys" });
      overlay = h("dialog", { class: "card keys-dialog", "aria-labelledby": "keys-title" },
        h("h2", { id: "keys-title" }, t("Keyboard shortcuts")), list,
        h("form", { method: "dialog" }, h("button", { type: "submit" }, t("Close"))));
      document.body.appendChild(overlay);
      overlay.fill = function () {
        S.clear(list);
        const fixed = [["?", t("Show this list")], ["↑ ↓ / j k", t("Move between the rows of a table")],
          ["← →", t("Move between a row's links and buttons")], [t("Enter"), t("Open the batch of the row")],
          [t("Space"), t("Select the row (where rows can be selected)")], [t("Shift + click"), t("Select a range of rows")]];
        fixed.concat(shortcuts.map(function (s) { return [s.key, s.description]; })).forEach(function (pair) {
          list.appendChild(h("dt", null, h("kbd", null, pair[0])));
          list.appendChild(h("dd", null, pair[1]));
        });
      };
    }
    overlay.fill();
    overlay.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    if (overlay && overlay.open) return;
    if (event.key === "?") { event.preventDefault(); showHelp(); return; }
    const table = document.querySelector("[data-roving-main]");
    if ((event.key === "j" || event.key === "k") && table) {
      event.preventDefault();
      moveRow(table, event.key === "j" ? 1 : -1);
      return;
    }
    const found = shortcuts.find(function (s) { return s.key === event.key; });
    if (found) { event.preventDefault(); found.run(); }
  });

  const search = document.querySelector("[data-shortcut-search]");
  if (search) {
    shortcut("/", t("Search"), function () { search.focus(); search.select(); });
    // Escape leaves the search box for the results.
    search.addEventListener("keydown", function (event) {
      const table = document.querySelector("[data-roving-main]");
      if (event.key !== "Escape" || !table) return;
      const row = table.querySelector('tr[data-id][tabindex="0"]') || table.querySelector("tr[data-id]");
      if (row) { event.preventDefault(); row.focus(); }
    });
  }

  /* Re-render `tbody` with `render()` and keep the focus on the same row (by data-id), and on the same
   * link or button of that row, when it had it: a refresh never moves the keyboard user. */
  function keepingFocus(tbody, render) {
    const active = document.activeElement;
    const row = active && tbody.contains(active) ? active.closest("tr[data-id]") : null;
    const id = row ? row.getAttribute("data-id") : null;
    const onBadge = active && active.classList && active.classList.contains("badge");
    const control = row ? Array.from(row.querySelectorAll(CONTROLS)).indexOf(active) : -1;
    render();
    if (!id) return;
    const again = tbody.querySelector('tr[data-id="' + (window.CSS && CSS.escape ? CSS.escape(id) : id) + '"]');
    const badge = again && onBadge ? again.querySelector(".badge") : null;
    const sameControl = again && control >= 0 ? again.querySelectorAll(CONTROLS)[control] : null;
    if (badge) { setCurrent(tbody, again, false); badge.tabIndex = -1; badge.focus(); }
    else if (sameControl) { setCurrent(tbody, again, false); sameControl.focus(); }
    else if (again) { setCurrent(tbody, again, true); } else if (tbody.querySelector("tr[data-id]")) {
      setCurrent(tbody, tbody.querySelector("tr[data-id]"), true);
    }
  }

  const helpButton = document.getElementById("show-shortcuts");
  if (helpButton) helpButton.addEventListener("click", showHelp);

  S.rovingTable = rovingTable;
  S.keepingFocus = keepingFocus;
  S.shortcut = shortcut;
  S.showShortcuts = showHelp;
})();
