/* Many mask files at once: a drop zone and a file picker (multiple), each file uploaded in turn
 * with its own progress bar and result. The batch choice lists only the batches the server
 * offers uploads on (the page decides, from page.offers). */
(function () {
  "use strict";
  const S = window.SegDash;
  const h = S.h;
  const t = S.t, tn = S.tn;

  /* Wire the multi_upload macro's form. options.batchId(): the batch to upload into;
   * options.onUploaded(results) once every file is done. */
  function bindMultiUpload(form, options) {
    const input = form.querySelector("[data-upload-files]");
    const zone = form.querySelector("[data-drop-zone]");
    const list = form.querySelector("[data-upload-list]");
    const result = form.querySelector("[data-upload-result]");
    const submit = form.querySelector("[data-upload-submit]");
    let dropped = null;

    function chosen() { return dropped || Array.from(input.files || []); }

    function describeChoice() {
      const files = chosen();
      zone.querySelector("[data-drop-text]").textContent = files.length
        ? tn("%(n)s file chosen: %(names)s", "%(n)s files chosen: %(names)s", files.length, { n: S.fmtNumber(files.length),
          names: files.slice(0, 3).map(function (f) { return f.name; }).join(", ") + (files.length > 3 ? " …" : "") })
        : t("Drop mask files here, or");
    }

    input.addEventListener("change", function () { dropped = null; describeChoice(); });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      dropped = Array.from(event.dataTransfer.files || []);
      describeChoice();
    });

    function fileRow(file) {
      const bar = h("progress", { max: 100, value: 0, "aria-label": t("Upload of %(file)s", { file: file.name }) });
      const text = h("span", { class: "upload-file-result" }, t("Waiting"));
      const row = h("li", { class: "upload-file" }, h("span", { class: "upload-file-name" }, file.name), bar, text);
      return { row: row, bar: bar, text: text };
    }

    async function uploadAll(batchId, files) {
      S.clear(list);
      const rows = files.map(fileRow);
      rows.forEach(function (r) { list.appendChild(r.row); });
      const outcome = { stored: 0, deduplicated: 0, failed: 0 };
      for (let i = 0; i < files.length; i++) {
        const file = files[i], r = rows[i];
        const refusal = S.uploadRefusal(file);
        if (refusal) {
          r.text.textContent = refusal === "too_large"
            ? t("Too large (%(size)s; the limit is %(limit)s)", { size: S.fmtBytes(file.size), limit: S.fmtBytes(S.config.max_upload_bytes) })
            : t("Empty file: skipped");
          r.row.classList.add("failed");
          outcome.failed++;
          continue;
        }
        r.text.textContent = t("Uploading…");
        try {
          const stored = await S.uploadMask(file, batchId, function (loaded, total, percent) { r.bar.value = percent; });
          r.bar.value = 100;
          if (stored.deduplicated) { outcome.deduplicated++; r.text.textContent = t("Already stored (identical file)"); }
          else { outcome.stored++; r.text.textContent = t("Stored (%(size)s)", { size: S.fmtBytes(stored.length) }); }
          r.row.classList.add("done");
        } catch (err) {
          outcome.failed++;
          r.row.classList.add("failed");
          r.text.textContent = t("Failed: %(reason)s", { reason: err.message });
        }
      }
      return outcome;
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const batchId = options.batchId();
      const files = chosen();
      if (!batchId) { S.showMessage(result, "error", t("Choose the batch to upload into.")); result.focus(); return; }
      if (!files.length) { S.showMessage(result, "error", t("Choose or drop the mask files to upload.")); input.focus(); return; }
      S.showMessage(result, null, null);
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      const outcome = await uploadAll(batchId, files);
      form.removeAttribute("aria-busy");
      submit.disabled = false;
      dropped = null;
      input.value = "";
      describeChoice();
      const parts = [tn("%(n)s file stored in %(batch)s", "%(n)s files stored in %(batch)s", outcome.stored, { n: S.fmtNumber(outcome.stored), batch: batchId })];
      if (outcome.deduplicated) parts.push(t("%(n)s already there", { n: S.fmtNumber(outcome.deduplicated) }));
      if (outcome.failed) parts.push(t("%(n)s failed", { n: S.fmtNumber(outcome.failed) }));
      S.showMessage(result, outcome.failed ? "warn" : "ok", parts.join(", ") + ".");
      const note = result.querySelector(".notice");
      if (note) { note.tabIndex = -1; note.focus(); }
      if (options.onUploaded) options.onUploaded(outcome);
    });
  }

  S.bindMultiUpload = bindMultiUpload;
})();
