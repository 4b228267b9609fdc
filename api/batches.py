"""Batch endpoints: list, detail, status/assignee change, bulk assign, CSV export."""
import csv
import io
import itertools

from flask import Blueprint, Response, g, jsonify, request, stream_with_context

import batch_service
import request_limits
import workflow
from auth import require_role
from batch_ids import canonical_batch_id
from errors import bad_request, not_found
from pagination import paging_from_request
from validation import choice_arg, json_body, plain_string, string_arg

bp = Blueprint("batches", __name__, url_prefix="/api")

EXPORT_COLUMNS = ("id", "name", "assignee", "status", "mask_count", "image_count", "progress", "updated_at")


def filter_from_request():
    """The list filters shared by the list and the export."""
    status = choice_arg("status", workflow.STATUSES)
    assignee = string_arg("assignee", max_length=64)
    q = string_arg("q", max_length=100)
    return batch_service.list_filter(status=status, assignee=assignee, q=q)


def batch_id_or_404(raw):
    batch_id = canonical_batch_id(raw)
    if batch_id is None:
        raise not_found(f"No batch {raw[:40]}.")
    return batch_id


@bp.get("/batches")
@require_role("segmenter")
def list_batches():
    query = filter_from_request()
    if request.args.get("q"):  # a search (checked by filter_from_request)
        request_limits.check("search", g.user)
    paging = paging_from_request()
    return Response(batch_service.list_body(query, paging), mimetype="application/json")


@bp.get("/batches/<path:raw_id>")
@require_role("segmenter")
def get_batch(raw_id):
    return jsonify(batch_service.get_detail(batch_id_or_404(raw_id)))


@bp.patch("/batches/<path:raw_id>")
@require_role("segmenter")
def patch_batch(raw_id):
    batch_id = batch_id_or_404(raw_id)
    body = json_body({"status", "assignee"})
    if not body:
        raise bad_request("Send 'status' and/or 'assignee'.", "invalid_value")
    changes = {}
    if "status" in body:
        status = plain_string(body["status"], "status", max_length=32)
        if status not in workflow.STATUSES:
            raise bad_request(f"Unknown status; use one of: {', '.join(workflow.STATUSES)}.",
                              "invalid_status")
        changes["status"] = status
    if "assignee" in body:
        changes["assignee"] = None if body["assignee"] is None else plain_string(
            body["assignee"], "assignee", max_length=64)
    return jsonify(batch_service.update(batch_id, changes, g.user))


@bp.post("/batches/assign")
@require_role("lead")
def assign_batches():
    body = json_body({"ids", "assignee"})
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        raise bad_request("'ids' must be a non-empty list of batch ids.", "invalid_type")
    if len(ids) > batch_service.MAX_BULK_IDS:
        raise bad_request(f"At most {batch_service.MAX_BULK_IDS} ids per request.", "too_many")
    canonical = []
    for raw in ids:
        batch_id = canonical_batch_id(raw)
        if batch_id is None:
            raise bad_request(f"{str(raw)[:40]!r} is not a batch id.", "invalid_batch_id")
        if batch_id not in canonical:
            canonical.append(batch_id)
    if "assignee" not in body:
        raise bad_request("'assignee' is required (a segmenter's username, or null to unassign).",
                          "invalid_value")
    assignee = body["assignee"]
    if assignee is not None:
        assignee = plain_string(assignee, "assignee", max_length=64)
    return jsonify(batch_service.bulk_assign(canonical, assignee))


def _csv_line(values):
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _csv_safe(value):
    """Neutralise cells a spreadsheet would run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/export/batches.csv")
@require_role("segmenter")
def export_batches():
    query = filter_from_request()
    request_limits.check("export", g.user)
    cursor = batch_service.iter_export_rows(query)
    # Run the query before the response starts, so an outage still answers 503.
    first = next(cursor, None)

    def rows():
        yield _csv_line(EXPORT_COLUMNS)
        if first is None:
            return
        for doc in itertools.chain([first], cursor):
            item = batch_service.list_item(doc)
            yield _csv_line([_csv_safe(item[column]) for column in EXPORT_COLUMNS])

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="batches.csv"'})
