"""Mask file endpoints: streamed upload with deduplication, streamed download (with byte ranges), previews."""
import mimetypes
import posixpath

from flask import Blueprint, Response, g, jsonify, request, send_file
from flask_babel import gettext as _
from werkzeug.exceptions import RequestedRangeNotSatisfiable

import batch_service
import mask_preview
import mask_service
import policy
from api import schemas
from api.contract import Reply, operation
from errors import bad_request, enforce
from policy import N_

bp = Blueprint("masks", __name__, url_prefix="/api")


def _target_batch(batch_id, user):
    """The canonical batch to upload into (or None), once policy.may_upload allows it."""
    if batch_id is None:
        enforce(policy.may_upload(user, None))
        return None
    batch = batch_service.load_batch(batch_id, {"_id": 0, "id": 1, "assignee": 1, "status": 1})
    enforce(policy.may_upload(user, batch))
    return batch_id


@bp.post("/masks")
@operation("masks", {200: Reply("The current version of this name in this batch has the same bytes; that version.",
                           schemas.MaskFile),
                     201: Reply("The new file (and version).", schemas.MaskFile)},
           form=schemas.MaskUpload, errors=(404, 409),
           form_missing={"file": ("missing_file", N_("Send the mask as multipart form field 'file'."))})
def upload_mask(form):
    """Upload a mask file

    Stored in GridFS while hashed (SHA-256). The name is sanitized (a relative path of
    safe characters). With `batch_id` the file becomes the current version of its name in
    that batch (the file name without directories, any case): a name the batch has gets
    version n+1, the older versions are kept but not counted. When the current version of
    that name in that batch has the same bytes, nothing is stored and that version is
    answered (200, `deduplicated: true`), so uploading again is how to learn the outcome of
    an upload whose answer was lost or was a 503; otherwise 201. Content is never compared
    with other batches' or unlinked files. Without `batch_id` (leads only) the file is stored
    unlinked (`version` null) and sync links it by its name. Segmenters must give one of
    their own batches that is not `completed`/`reviewed` (409 `batch_closed`). Above
    MAX_UPLOAD_MB (50 by default): 413.
    """
    filename = mask_service.sanitize_filename(form.filename or form.file.filename)
    if filename is None:
        raise bad_request(_("The file needs a usable name."), "invalid_filename")
    batch_id = _target_batch(form.batch_id, g.user)
    stored = mask_service.store(form.file.stream, filename, g.user["username"], batch_id)
    return jsonify(stored), (200 if stored["deduplicated"] else 201)


@bp.get("/masks/<file_id>")
@operation("masks", {200: Reply("The file, as an attachment; its media type follows from its name.",
                                {"type": "string", "format": "binary"}, media="*/*"),
                     304: Reply("Not modified (the `If-None-Match` ETag matches).", media=None)})
def download_mask(file_id):
    """Download a mask file (streamed)

    The ETag is the file's SHA-256; `If-None-Match` with it answers 304. `file_id` is the
    file's id (24 hex digits); anything else is 404.
    """
    grid_out = mask_service.open_download(file_id)
    name = posixpath.basename(grid_out.filename or "mask") or "mask"
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    sha256 = (grid_out.metadata or {}).get("sha256")
    response = send_file(grid_out, mimetype=mimetype, as_attachment=True, download_name=name,
                         etag=sha256 or False, conditional=False, max_age=0)
    response.content_length = grid_out.length
    # Here rather than in send_file, which cannot tell a GridFS file's length and would
    # then ignore Range: one byte range is answered with 206 (GridOut seeks to its start).
    try:
        return response.make_conditional(request, accept_ranges=True, complete_length=grid_out.length)
    except RequestedRangeNotSatisfiable:
        grid_out.close()
        raise


@bp.get("/masks/<file_id>/preview")
@operation("masks", {200: Reply("The preview, a PNG image.", {"type": "string", "format": "binary"}, media="image/png"),
                     304: Reply("Not modified (the `If-None-Match` ETag matches).", media=None)},
           query=schemas.PreviewQuery, errors=(415, 422))
def preview_mask(file_id, query):
    """A PNG preview of a mask image

    At most `size` pixels on its longer side (16–1024, default 256), made once per file and
    size and then served from a cache. Label masks (few distinct values such as 0/1 or class
    ids) are drawn in the colour-blind-safe Okabe–Ito palette on black; other images are
    scaled. Whoever may download the mask may preview it. A file that is not an image
    answers 415 `not_an_image`, a damaged one 422 `broken_image`, one too large to decode
    safely (PREVIEW_MAX_MB, PREVIEW_MAX_PIXELS) 422 `image_too_large`. The ETag is the
    file's SHA-256 and the size; `If-None-Match` with it answers 304.
    """
    grid_out = mask_service.open_download(file_id)
    tag = mask_preview.etag(grid_out, query.size)
    if tag in request.if_none_match:
        response = Response(status=304)
    else:
        response = Response(mask_preview.preview(grid_out, query.size).png, mimetype="image/png")
    response.set_etag(tag)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
