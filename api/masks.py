"""Mask file endpoints: streamed upload with deduplication, streamed download (with byte ranges)."""
import mimetypes
import posixpath

from flask import Blueprint, g, jsonify, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

import db
import mask_service
import workflow
from auth import has_role, require_role
from batch_ids import canonical_batch_id
from errors import bad_request, conflict, forbidden, not_found
from validation import single_value

bp = Blueprint("masks", __name__, url_prefix="/api")


def _target_batch(raw_batch_id, user):
    """The canonical batch to upload into (or None), after the role checks."""
    is_lead = has_role(user, "lead")
    if raw_batch_id in (None, ""):
        if not is_lead:
            raise bad_request("Segmenters must give the 'batch_id' of one of their batches.",
                              "missing_batch_id")
        return None
    batch_id = canonical_batch_id(raw_batch_id)
    if batch_id is None:
        raise bad_request("'batch_id' is not a batch id.", "invalid_batch_id")
    batch = db.batches().find_one({"id": batch_id}, {"_id": 0, "assignee": 1, "status": 1})
    if batch is None:
        raise not_found(f"No batch {batch_id}.")
    if not is_lead and batch.get("assignee") != user["username"]:
        raise forbidden("You can only upload masks to batches assigned to you.")
    if not is_lead and batch.get("status") in workflow.DONE_STATUSES:
        raise conflict(f"Batch {batch_id} is {batch.get('status')}; ask a lead to reopen it.",
                       "batch_closed")
    return batch_id


@bp.post("/masks")
@require_role("segmenter")
def upload_mask():
    upload = single_value(request.files, "file")
    if upload is None:
        raise bad_request("Send the mask as multipart form field 'file'.", "missing_file")
    filename = mask_service.sanitize_filename(single_value(request.form, "filename") or upload.filename)
    if filename is None:
        raise bad_request("The file needs a usable name.", "invalid_filename")
    batch_id = _target_batch(single_value(request.form, "batch_id"), g.user)
    stored = mask_service.store(upload.stream, filename, g.user["username"], batch_id)
    return jsonify(stored), (200 if stored["deduplicated"] else 201)


@bp.get("/masks/<file_id>")
@require_role("segmenter")
def download_mask(file_id):
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
