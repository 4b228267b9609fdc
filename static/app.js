/* SegDash: helpers shared by the page scripts (no dependencies, no build step).
 *
 * - api(): JSON requests to /api with the CSRF token, errors turned into readable text;
 * - uploadMask(): multipart upload with progress events (XMLHttpRequest);
 * - confirm(): an in-page confirmation dialog (no window.confirm);
 * - small DOM, formatting, message, pager and upload-form helpers;
 * - t(): the page's translated strings (the `segdash-strings` JSON block of base.html,
 *   rendered from the gettext catalog: ui_strings.py lists them) and Intl formatting in
 *   the page's language (<html lang>) and the browser's time zone.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("segdash-config").textContent);
  const strings = JSON.parse(document.getElementById("segdash-strings").textContent);
  const LOCALE = document.documentElement.lang || "en";

  /* The translation of `key` (an English msgid of ui_strings.py) with %(name)s filled from params. */
  function t(key, params) {
    const text = Object.prototype.hasOwnProperty.call(strings.messages, key) ? strings.messages[key] : key;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return params && params[name] !== undefined && params[name] !== null ? String(params[name]) : whole;
    });
  }

  /* The singular or plural message for the count n, in the page's language. */
  const pluralRules = new Intl.PluralRules(LOCALE);
  function tn(one, other, n, params) { return t(pluralRules.select(n) === "one" ? one : other, params); }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  class ApiError extends Error {
    constructor(message, status, code, body) {
      super(message);
      this.status = status;
      this.code = code || null;
      this.body = body || null;
    }
  }

  /* A readable sentence for a failed request: the API's own message when it sent one. */
  function errorMessage(status, body) {
    if (status === 401) return t("Your session has ended. Reload the page and log in again.");
    if (body && typeof body.message === "string" && body.message) return body.message;
    if (status === 403) return t("You are not allowed to do this.");
    if (status === 404) return t("Not found.");
    if (status === 413) return t("The file is larger than the upload limit.");
    if (status === 503) return t("The database is not reachable right now; try again shortly.");
    if (status >= 500) return t("The server could not complete the request. Try again in a moment.");
    return t("The request failed (HTTP %(status)s).", { status: status });
  }

  async function api(method, url, body) {
    const options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") options.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new ApiError(t("Could not reach the server. Check the connection and try again."), 0, "network");
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").indexOf("application/json") !== -1) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    if (!response.ok) throw new ApiError(errorMessage(response.status, data), response.status, data && data.error, data);
    return data;
  }

  /* Why a chosen file is not sent at all: "too_large" (over the server's limit), "empty", or null. */
  function uploadRefusal(file) {
    if (config.max_upload_bytes && file.size > config.max_upload_bytes) return "too_large";
    if (!file.size) return "empty";
    return null;
  }

  /* POST /api/masks with `file` and `batchId`; onProgress(loaded, total, percent) while the bytes go up. */
  function uploadMask(file, batchId, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/masks");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && onProgress) {
          onProgress(event.loaded, event.total, event.total ? Math.round((100 * event.loaded) / event.total) : 0);
        }
      });
      xhr.addEventListener("load", function () {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
        if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
        else reject(new ApiError(errorMessage(xhr.status, data), xhr.status, data && data.error, data));
      });
      xhr.addEventListener("error", function () {
        reject(new ApiError(t("The upload was interrupted. Check the connection and try again."), 0, "network"));
      });
      xhr.addEventListener("abort", function () {
        reject(new ApiError(t("The upload was cancelled."), 0, "aborted"));
      });
      const form = new FormData();
      if (batchId) form.append("batch_id", batchId);
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  /* h("a", {href: "/x", class: "y"}, "text", childNode …) */
  function h(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        const value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        // Through the CSSOM: the Content-Security-Policy refuses style attributes.
        else if (key === "style") node.style.cssText = String(value);
        else if (key.slice(0, 2) === "on" && typeof value === "function") node.addEventListener(key.slice(2), value);
        else if (value === true) node.setAttribute(key, "");
        else node.setAttribute(key, String(value));
      });
    }
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function statusLabel(status) {
    if (!status) return "—";
    if (strings.statuses[status]) return strings.statuses[status];
    const text = String(status).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  /* Where a batch came from (metadata.source), as shown. */
  function sourceLabel(source) { return source ? (strings.sources[source] || source) : "—"; }

  function badge(status) {
    return h("span", { class: "badge s-" + status, "data-status": status }, statusLabel(status));
  }

  const numberFormat = new Intl.NumberFormat(LOCALE);
  function fmtNumber(n) { return (n === null || n === undefined) ? "—" : numberFormat.format(Number(n)); }

  /* 42.5 -> "42.5%" (or "42,5 %"): `percent` is out of 100. */
  const percentFormat = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 });
  function fmtPercent(percent) { return percentFormat.format((Number(percent) || 0) / 100); }

  /* A duration in milliseconds: "850 ms", "12.4 s", "3.5 min". */
  function fmtDuration(ms) {
    ms = Number(ms) || 0;
    const [value, unit] = ms < 1000 ? [ms, "millisecond"] : ms < 60000 ? [ms / 1000, "second"] : [ms / 60000, "minute"];
    return new Intl.NumberFormat(LOCALE, { style: "unit", unit: unit, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
  }

  /* "3 minutes ago", "hace 3 minutos". */
  const relativeFormat = new Intl.RelativeTimeFormat(LOCALE, { numeric: "auto" });
  function fmtRelative(iso) {
    const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    if (isNaN(seconds)) return "";
    const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [2592000, "day"], [31536000, "month"], [Infinity, "year"]];
    let divisor = 1;
    for (const [limit, unit] of steps) {
      if (Math.abs(seconds) < limit) return relativeFormat.format(Math.round(seconds / divisor), unit);
      divisor = limit;
    }
    return "";
  }

  function fmtDate(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    return date.toLocaleString(LOCALE, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function timeEl(iso) { return iso ? h("time", { datetime: iso, title: fmtRelative(iso) }, fmtDate(iso)) : "—"; }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    const [value, unit] = n < 1024 ? [n, "byte"] : n < 1024 * 1024 ? [n / 1024, "kilobyte"] : [n / (1024 * 1024), "megabyte"];
    return new Intl.NumberFormat(LOCALE, { style: "unit", unit: unit, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
  }

  function progressBar(percent) {
    const value = Math.max(0, Math.min(100, Number(percent) || 0));
    return h("span", { class: "progress-cell" },
      h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: "width:" + value + "%" })),
      h("span", { class: "progress-text" }, fmtPercent(value)));
  }

  /* Replace the contents of `slot` with a message: kind = "ok" | "error" | "info" | "warn". */
  function showMessage(slot, kind, content) {
    clear(slot);
    if (!content) return;
    slot.appendChild(h("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, content));
  }

  function batchUrl(id) { return "/batches/" + encodeURIComponent(id); }

  /* Page links that keep every current query parameter (the filters) and change `page`. */
  function pageHref(page) {
    const params = new URLSearchParams(window.location.search);
    if (page <= 1) params.delete("page"); else params.set("page", String(page));
    const query = params.toString();
    return window.location.pathname + (query ? "?" + query : "");
  }

  /* `noun(n)`: the counted things, e.g. n => tn("%(n)s batch", "%(n)s batches", n, {n: fmtNumber(n)}). */
  function renderPager(nav, envelope, noun) {
    clear(nav);
    const pages = Math.max(1, Math.ceil(envelope.total / envelope.per_page));
    const page = envelope.page;
    if (envelope.total === 0) { nav.hidden = true; return; }
    nav.hidden = false;
    const first = (page - 1) * envelope.per_page + 1;
    const last = Math.min(envelope.total, first + envelope.items.length - 1);
    nav.appendChild(h("span", { class: "pager-info" },
      envelope.items.length ? t("Showing %(first)s–%(last)s of %(things)s", { first: fmtNumber(first), last: fmtNumber(last), things: noun(envelope.total) })
                            : noun(envelope.total)));
    const links = h("ul", { class: "pager-links" });
    function item(label, target, opts) {
      opts = opts || {};
      if (opts.current) return h("li", null, h("span", { class: "current", "aria-current": "page" }, label));
      if (target < 1 || target > pages || opts.disabled) return h("li", null, h("span", { class: "disabled", "aria-disabled": "true" }, label));
      return h("li", null, h("a", { href: pageHref(target), "aria-label": opts.aria || null, rel: opts.rel || null }, label));
    }
    links.appendChild(item(t("‹ Previous"), page - 1, { rel: "prev", aria: t("Previous page") }));
    const shown = new Set([1, pages, page - 1, page, page + 1]);
    let previous = 0;
    Array.from(shown).filter(function (p) { return p >= 1 && p <= pages; }).sort(function (a, b) { return a - b; })
      .forEach(function (p) {
        if (p - previous > 1) links.appendChild(h("li", { class: "gap", "aria-hidden": "true" }, "…"));
        links.appendChild(item(fmtNumber(p), p, { current: p === page, aria: t("Page %(n)s", { n: fmtNumber(p) }) }));
        previous = p;
      });
    links.appendChild(item(t("Next ›"), page + 1, { rel: "next", aria: t("Next page") }));
    nav.appendChild(links);
  }

  /* Wire an upload form made by the upload_form macro.
   * options.batchId(): the batch to upload into; options.onUploaded(result) after success. */
  function bindUploadForm(form, options) {
    const fileInput = form.querySelector("[data-upload-file]");
    const submit = form.querySelector("[data-upload-submit]");
    const progressBox = form.querySelector("[data-upload-progress]");
    const progress = progressBox.querySelector("progress");
    const progressText = form.querySelector("[data-upload-progress-text]");
    const result = form.querySelector("[data-upload-result]");

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const batchId = options.batchId();
      const file = fileInput.files && fileInput.files[0];
      if (!batchId) { showMessage(result, "error", t("Choose the batch to upload into.")); return; }
      if (!file) { showMessage(result, "error", t("Choose a mask file to upload.")); fileInput.focus(); return; }
      const refusal = uploadRefusal(file);
      if (refusal === "too_large") {
        showMessage(result, "error", t("“%(file)s” is %(size)s, larger than the %(limit)s upload limit.",
          { file: file.name, size: fmtBytes(file.size), limit: fmtBytes(config.max_upload_bytes) }));
        return;
      }
      if (refusal === "empty") { showMessage(result, "error", t("“%(file)s” is empty.", { file: file.name })); return; }
      showMessage(result, null, null);
      submit.disabled = true;
      progressBox.hidden = false;
      progress.value = 0;
      progressText.textContent = t("Uploading %(file)s… %(percent)s", { file: file.name, percent: fmtPercent(0) });
      form.setAttribute("aria-busy", "true");
      try {
        const stored = await uploadMask(file, batchId, function (loaded, total, percent) {
          progress.value = percent;
          progressText.textContent = t("Uploading %(file)s… %(percent)s (%(loaded)s of %(total)s)",
            { file: file.name, percent: fmtPercent(percent), loaded: fmtBytes(loaded), total: fmtBytes(total) });
        });
        progress.value = 100;
        progressText.textContent = t("Upload finished.");
        if (stored.deduplicated) {
          const other = stored.batch_id && stored.batch_id !== batchId;
          showMessage(result, "info", [h("strong", null, t("Deduplicated:")), " ",
            (stored.batch_id ? t("an identical file is already stored as “%(file)s” in %(batch)s, so nothing new was stored.", { file: stored.filename, batch: stored.batch_id })
                             : t("an identical file is already stored as “%(file)s”, so nothing new was stored.", { file: stored.filename })) +
            (other ? " " + t("That file belongs to another batch.") : "")]);
        } else {
          showMessage(result, "ok", [h("strong", null, t("Stored:")), " ",
            stored.batch_id ? t("“%(file)s” (%(size)s) in %(batch)s.", { file: stored.filename, size: fmtBytes(stored.length), batch: stored.batch_id })
                            : t("“%(file)s” (%(size)s).", { file: stored.filename, size: fmtBytes(stored.length) })]);
        }
        form.reset();
        if (options.afterReset) options.afterReset();
        if (options.onUploaded) options.onUploaded(stored);
      } catch (err) {
        progressText.textContent = t("Upload failed.");
        showMessage(result, "error", err.message);
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
        window.setTimeout(function () { progressBox.hidden = true; }, 800);
      }
    });
  }

  /* Ask a yes/no question in a modal <dialog> (Esc or "no" declines); resolves to true for yes.
   * Focus goes to the safe answer and back to what had it afterwards. */
  function confirmDialog(options) {
    const opener = document.activeElement;
    const yes = h("button", { type: "submit", value: "yes", "data-confirm": "yes" }, options.yes);
    const no = h("button", { type: "submit", value: "no", class: "secondary", "data-confirm": "no" }, options.no);
    const dialog = h("dialog", { class: "confirm-dialog", "aria-labelledby": "confirm-dialog-title",
      "aria-describedby": "confirm-dialog-text" },
      h("form", { method: "dialog", class: "dialog-form" },
        h("h2", { id: "confirm-dialog-title" }, options.title),
        h("p", { id: "confirm-dialog-text" }, options.text),
        h("div", { class: "button-row" }, yes, no)));
    document.body.appendChild(dialog);
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () {
        dialog.remove();
        if (opener && opener.focus && document.contains(opener)) opener.focus();
        resolve(dialog.returnValue === "yes");
      }, { once: true });
      dialog.showModal();
      no.focus();
    });
  }

  /* PATCH a batch's status; when the server answers `incomplete_masks`, ask whether to complete
   * it anyway and send the confirmation. Resolves to the updated batch, or null when declined. */
  async function changeBatchStatus(batchId, changes) {
    const url = "/api/batches/" + encodeURIComponent(batchId);
    try {
      return await api("PATCH", url, changes);
    } catch (err) {
      if (err.code !== "incomplete_masks") throw err;
      const body = err.body || {};
      const go = await confirmDialog({ title: t("Complete with missing masks?"),
        text: t("Only %(masks)s of %(images)s images of %(id)s have a mask. Complete the batch anyway?",
          { masks: fmtNumber(body.mask_count), images: fmtNumber(body.image_count), id: batchId }),
        yes: t("Complete anyway"), no: t("Keep working") });
      if (!go) return null;
      return api("PATCH", url, Object.assign({}, changes, { confirm_incomplete: true }));
    }
  }
  /* Links back to the batch list (data-list-link) keep the filters it was last shown with. */
  function restoreListLinks() {
    let query = "";
    try { query = window.sessionStorage.getItem("segdash.batches.query") || ""; } catch (err) { query = ""; }
    if (!/^\?[\w%.=&+~-]*$/.test(query)) return;
    document.querySelectorAll("a[data-list-link]").forEach(function (a) { a.href = a.pathname + query; });
  }
  restoreListLinks();
  /* Job kinds and states as shown ("Sync", "Cancelled"), in the page's language. */
  const JOB_TITLES = strings.jobs;
  function jobTitle(kind) { return strings.jobs[kind] || kind; }
  function jobStateLabel(state) { return strings.job_states[state] || state; }

  /* "files", "batches": a job's unit for the count n. */
  function jobUnit(unit, n) {
    if (unit === "files") return tn("file", "files", n);
    if (unit === "batches") return tn("batch", "batches", n);
    return tn("item", "items", n);
  }

  /* A background job's progress as text: "1,200 of 20,000 files (6%) · 850 files/s · about 22 s left".
   * A job whose total is not known yet says so instead of pretending to a percentage. */
  function jobProgressText(job) {
    const p = job.progress || {};
    if (job.state === "queued") return t("Waiting for a job runner to start it…");
    if (p.total === null || p.total === undefined) {
      return p.done ? t("%(n)s %(unit)s so far…", { n: fmtNumber(p.done), unit: jobUnit(p.unit, p.done) })
        : t("Starting: counting what there is to do…");
    }
    const pct = p.total ? Math.floor((100 * (p.done || 0)) / p.total) : 100;
    let text = t("%(done)s of %(total)s %(unit)s (%(percent)s)", { done: fmtNumber(p.done || 0), total: fmtNumber(p.total),
      unit: jobUnit(p.unit, p.total), percent: fmtPercent(pct) });
    if (job.rate_per_s) {
      const rate = Math.round(job.rate_per_s);
      text += " · " + t("%(n)s %(unit)s/s", { n: fmtNumber(rate), unit: jobUnit(p.unit, rate) });
    }
    if (job.state === "running" && job.eta_s !== null && job.eta_s !== undefined) {
      text += " · " + t("about %(duration)s left", { duration: fmtDuration(job.eta_s * 1000) });
    }
    return text;
  }

  /* Show a job's progress on a <progress> element: a moving bar when the total is known,
   * an indeterminate one (no value) while it is not. */
  function setJobBar(bar, job) {
    const p = job.progress || {};
    if (job.state === "running" && p.total !== null && p.total !== undefined) {
      bar.max = Math.max(1, p.total);
      bar.value = Math.min(p.done || 0, bar.max);
    } else {
      bar.removeAttribute("value");
      bar.removeAttribute("max");
    }
  }

  /* Why a failed job failed, in the page's language (the API translates its error code). */
  function jobError(job) { return job.error_message || job.error || t("unknown error"); }

  window.SegDash = {
    config: config, ApiError: ApiError, api: api, uploadMask: uploadMask, uploadRefusal: uploadRefusal, errorMessage: errorMessage,
    t: t, tn: tn, locale: LOCALE, fmtPercent: fmtPercent, fmtDuration: fmtDuration, fmtRelative: fmtRelative,
    h: h, clear: clear, badge: badge, statusLabel: statusLabel, sourceLabel: sourceLabel, fmtNumber: fmtNumber, fmtDate: fmtDate,
    timeEl: timeEl, fmtBytes: fmtBytes, progressBar: progressBar, showMessage: showMessage,
    batchUrl: batchUrl, pageHref: pageHref, renderPager: renderPager, bindUploadForm: bindUploadForm,
    confirm: confirmDialog, changeBatchStatus: changeBatchStatus,
    jobProgressText: jobProgressText, setJobBar: setJobBar, JOB_TITLES: JOB_TITLES,
    jobTitle: jobTitle, jobStateLabel: jobStateLabel, jobUnit: jobUnit, jobError: jobError,
  };
})();
