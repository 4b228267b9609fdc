/* SegDash: helpers shared by the page scripts (no dependencies, no build step).
 *
 * - api(): JSON requests to /api with the CSRF token, errors turned into readable text;
 * - uploadMask(): multipart upload with progress events (XMLHttpRequest);
 * - small DOM, formatting, message, pager and upload-form helpers.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("segdash-config").textContent);

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
    if (status === 401) return "Your session has ended. Reload the page and log in again.";
    if (body && typeof body.message === "string" && body.message) return body.message;
    if (status === 403) return "You are not allowed to do this.";
    if (status === 404) return "Not found.";
    if (status === 413) return "The file is larger than the upload limit.";
    if (status === 503) return "The database is not reachable right now; try again shortly.";
    if (status >= 500) return "The server could not complete the request. Try again in a moment.";
    return "The request failed (HTTP " + status + ").";
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
      throw new ApiError("Could not reach the server. Check the connection and try again.", 0, "network");
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").indexOf("application/json") !== -1) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    if (!response.ok) throw new ApiError(errorMessage(response.status, data), response.status, data && data.error, data);
    return data;
  }

  /* POST /api/masks with `file` and `batchId`; onProgress(loaded, total) while the bytes go up. */
  function uploadMask(file, batchId, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/masks");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && onProgress) onProgress(event.loaded, event.total);
      });
      xhr.addEventListener("load", function () {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
        if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
        else reject(new ApiError(errorMessage(xhr.status, data), xhr.status, data && data.error, data));
      });
      xhr.addEventListener("error", function () {
        reject(new ApiError("The upload was interrupted. Check the connection and try again.", 0, "network"));
      });
      xhr.addEventListener("abort", function () {
        reject(new ApiError("The upload was cancelled.", 0, "aborted"));
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
    const text = String(status).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function badge(status) {
    return h("span", { class: "badge s-" + status, "data-status": status }, statusLabel(status));
  }

  function fmtNumber(n) { return (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US"); }

  function fmtDate(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function timeEl(iso) { return iso ? h("time", { datetime: iso, title: iso }, fmtDate(iso)) : "—"; }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / (1024 * 1024)).toFixed(1) + " MB";
  }

  function progressBar(percent) {
    const value = Math.max(0, Math.min(100, Number(percent) || 0));
    return h("span", { class: "progress-cell" },
      h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: "width:" + value + "%" })),
      h("span", { class: "progress-text" }, value + "%"));
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

  function renderPager(nav, envelope, noun) {
    clear(nav);
    const pages = Math.max(1, Math.ceil(envelope.total / envelope.per_page));
    const page = envelope.page;
    if (envelope.total === 0) { nav.hidden = true; return; }
    nav.hidden = false;
    const first = (page - 1) * envelope.per_page + 1;
    const last = Math.min(envelope.total, first + envelope.items.length - 1);
    nav.appendChild(h("span", { class: "pager-info" },
      envelope.items.length ? "Showing " + fmtNumber(first) + "–" + fmtNumber(last) + " of " + fmtNumber(envelope.total) + " " + noun
                            : fmtNumber(envelope.total) + " " + noun));
    const links = h("ul", { class: "pager-links" });
    function item(label, target, opts) {
      opts = opts || {};
      if (opts.current) return h("li", null, h("span", { class: "current", "aria-current": "page" }, label));
      if (target < 1 || target > pages || opts.disabled) return h("li", null, h("span", { class: "disabled", "aria-disabled": "true" }, label));
      return h("li", null, h("a", { href: pageHref(target), "aria-label": opts.aria || null, rel: opts.rel || null }, label));
    }
    links.appendChild(item("‹ Previous", page - 1, { rel: "prev", aria: "Previous page" }));
    const shown = new Set([1, pages, page - 1, page, page + 1]);
    let previous = 0;
    Array.from(shown).filter(function (p) { return p >= 1 && p <= pages; }).sort(function (a, b) { return a - b; })
      .forEach(function (p) {
        if (p - previous > 1) links.appendChild(h("li", { class: "gap", "aria-hidden": "true" }, "…"));
        links.appendChild(item(String(p), p, { current: p === page, aria: "Page " + p }));
        previous = p;
      });
    links.appendChild(item("Next ›", page + 1, { rel: "next", aria: "Next page" }));
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
      if (!batchId) { showMessage(result, "error", "Choose the batch to upload into."); return; }
      if (!file) { showMessage(result, "error", "Choose a mask file to upload."); fileInput.focus(); return; }
      if (config.max_upload_bytes && file.size > config.max_upload_bytes) {
        showMessage(result, "error", "“" + file.name + "” is " + fmtBytes(file.size) + ", larger than the " +
          fmtBytes(config.max_upload_bytes) + " upload limit.");
        return;
      }
      if (file.size === 0) { showMessage(result, "error", "“" + file.name + "” is empty."); return; }
      showMessage(result, null, null);
      submit.disabled = true;
      progressBox.hidden = false;
      progress.value = 0;
      progressText.textContent = "Uploading " + file.name + "… 0%";
      form.setAttribute("aria-busy", "true");
      try {
        const stored = await uploadMask(file, batchId, function (loaded, total) {
          const percent = total ? Math.round((100 * loaded) / total) : 0;
          progress.value = percent;
          progressText.textContent = "Uploading " + file.name + "… " + percent + "% (" + fmtBytes(loaded) + " of " + fmtBytes(total) + ")";
        });
        progress.value = 100;
        progressText.textContent = "Upload finished.";
        const where = stored.batch_id ? " in " + stored.batch_id : "";
        if (stored.deduplicated) {
          const other = stored.batch_id && stored.batch_id !== batchId;
          showMessage(result, "info", [h("strong", null, "Deduplicated: "),
            "an identical file is already stored as “" + stored.filename + "”" + where + ", so nothing new was stored." +
            (other ? " That file belongs to another batch." : "")]);
        } else {
          showMessage(result, "ok", [h("strong", null, "Stored: "),
            "“" + stored.filename + "” (" + fmtBytes(stored.length) + ")" + where + "."]);
        }
        form.reset();
        if (options.afterReset) options.afterReset();
        if (options.onUploaded) options.onUploaded(stored);
      } catch (err) {
        progressText.textContent = "Upload failed.";
        showMessage(result, "error", err.message);
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
        window.setTimeout(function () { progressBox.hidden = true; }, 800);
      }
    });
  }

  /* "2 min 5 s", "40 s", "3 h 10 min": a duration for people. */
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  const JOB_TITLES = { sync: "Sync", auto_create: "Auto-create", check: "Check", "import": "Import" };

  /* A background job's progress as text: "1,200 of 20,000 files (6%) · 850 files/s · about 22 s left".
   * A job whose total is not known yet says so instead of pretending to a percentage. */
  function jobProgressText(job) {
    const p = job.progress || {};
    const unit = p.unit || "items";
    if (job.state === "queued") return "Waiting for a job runner to start it…";
    if (p.total === null || p.total === undefined) {
      return p.done ? fmtNumber(p.done) + " " + unit + " so far…" : "Starting: counting what there is to do…";
    }
    const pct = p.total ? Math.floor((100 * (p.done || 0)) / p.total) : 100;
    let text = fmtNumber(p.done || 0) + " of " + fmtNumber(p.total) + " " + unit + " (" + pct + "%)";
    if (job.rate_per_s) text += " · " + fmtNumber(Math.round(job.rate_per_s)) + " " + unit + "/s";
    if (job.state === "running" && job.eta_s !== null && job.eta_s !== undefined) text += " · about " + fmtDuration(job.eta_s) + " left";
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

  window.SegDash = {
    config: config, ApiError: ApiError, api: api, uploadMask: uploadMask, errorMessage: errorMessage,
    h: h, clear: clear, badge: badge, statusLabel: statusLabel, fmtNumber: fmtNumber, fmtDate: fmtDate,
    timeEl: timeEl, fmtBytes: fmtBytes, progressBar: progressBar, showMessage: showMessage,
    batchUrl: batchUrl, pageHref: pageHref, renderPager: renderPager, bindUploadForm: bindUploadForm,
    fmtDuration: fmtDuration, jobProgressText: jobProgressText, setJobBar: setJobBar, JOB_TITLES: JOB_TITLES,
  };
})();
