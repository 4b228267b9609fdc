"""Batch endpoints: list, detail, status/assignee change, bulk assign, CSV export."""
import csv
import io
import itertools

from flask import Blueprint, Response, g, jsonify, stream_with_context
from flask_babel import gettext as _

import batch_service
import request_limits
from api import schemas
from api.contract import Reply, operation
from batch_ids import canonical_batch_id
from errors import not_found
from pagination import PageQuery

bp = Blueprint("batches", __name__, url_prefix="/api")

EXPORT_COLUMNS = ("id", "name", "assignee", "status", "mask_count", "image_count", "progress", "updated_at")
EXPORT_DISPOSITION = 'attachment; filename="batches.csv"'


class ListQuery(schemas.BatchFilter, schemas.BatchSort, PageQuery):
    """The list's filters, order and paging."""


class ExportQuery(schemas.BatchFilter, schemas.BatchSort):
    """The export's filters and order."""


def list_filter(query):
    """The Mongo filter of the list filters, shared by the list and the export."""
    return batch_service.list_filter(status=query.status, assignee=query.assignee, q=query.q)


def batch_id_or_404(raw):
    batch_id = canonical_batch_id(raw)
    if batch_id is None:
        raise not_found(_("No batch %(id)s.", id=raw[:40]))
    return batch_id


@bp.get("/batches")
@operation("batches", {200: Reply("The page.", schemas.BatchPage)}, query=ListQuery, errors=(429,))
def list_batches(query):
    """One page of batches, in id order unless `sort` says otherwise

    Page by number (`page`) or by the opaque `next_cursor` of the previous page (`after`);
    not both. In id order a cursor continues after the last batch it saw (stable while
    batches change); in another order it names the next page. A cursor only continues
    the sort order it was made for (else 400 `invalid_cursor`).
    Searches (`q`) count against the per-user limit of expensive requests (429 `rate_limited`).
    """
    if query.q:
        request_limits.check("search", g.user)
    return Response(batch_service.list_body(list_filter(query), query.paging()), mimetype="application/json")


@bp.get("/batches/<path:raw_id>")
@operation("batches", {200: Reply("The batch.", schemas.BatchDetail)})
def get_batch(raw_id):
    """A batch with its metadata and masks

    `raw_id` is a batch reference (`batch_0007`, `Batch-7`, `b7`, `7`); anything else, or an
    unknown batch, is 404.
    """
    return jsonify(batch_service.get_detail(batch_id_or_404(raw_id)))


@bp.patch("/batches/<path:raw_id>")
@operation("batches", {200: Reply("The batch after the change.", schemas.BatchDetail)}, body=schemas.BatchChange,
           errors=(409,))
def patch_batch(raw_id, body):
    """Change a batch's status and/or assignee

    Workflow: `pending` → `assigned` (by assigning) → `in_progress` → `completed` →
    `reviewed`; `completed` → `rejected` → `in_progress`; a lead may reopen a `reviewed`
    batch to `in_progress` (back to its segmenter) or to `completed`. Unassigning
    (`assignee: null`) returns a batch to `pending`; a `completed` or `reviewed` batch
    cannot be reassigned. Segmenters may only move their own batches `assigned` →
    `in_progress` → `completed` and `rejected` → `in_progress`; leads may make any valid
    change. Sending the current value changes nothing.

    Rejecting and reopening need a `reason` (400 `reason_required`); completing a batch with
    fewer masks than images needs `confirm_incomplete: true` (409 `incomplete_masks` with
    `mask_count` and `image_count` otherwise). Each change is added to the batch's `history`
    (who, when, from, to, reason); a rejection's reason is also kept as `last_rejection`.
    Refused transitions answer 409 `invalid_transition`; a change that raced another one
    answers 409 `concurrent_update`.
    """
    batch_id = batch_id_or_404(raw_id)
    changes = body.model_dump(include=body.model_fields_set)
    return jsonify(batch_service.update(batch_id, changes, g.user))


@bp.post("/batches/assign")
@operation("batches", {200: Reply("What was changed.", schemas.AssignResult)}, role="lead",
           body=schemas.BulkAssign)
def assign_batches(body):
    """Assign (or unassign) many batches at once (lead)

    One bulk write, and one insert of a history record per changed batch. The batches are
    the `ids` given, or every batch matching `filter` (the list's filters). Batches already
    with that assignee are reported `unchanged`, unknown ones `not_found`, and
    `completed`/`reviewed` ones `not_assignable`.
    """
    if body.filter is not None:
        found = body.filter
        query = batch_service.list_filter(status=found.status, assignee=found.assignee, q=found.q)
        return jsonify(batch_service.bulk_assign_matching(query, body.assignee, g.user, body.reason))
    return jsonify(batch_service.bulk_assign(list(dict.fromkeys(body.ids)), body.assignee, g.user, body.reason))


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
@operation("batches", {200: Reply("The CSV file (an attachment named `batches.csv`).", media="text/csv", headers={
    "Content-Disposition": {"type": "string", "const": EXPORT_DISPOSITION}})},
    query=ExportQuery, errors=(429,))
def export_batches(query):
    """Every batch matching the list filters, as CSV

    Columns `id,name,assignee,status,mask_count,image_count,progress,updated_at`, one
    row per batch in the list's `sort` order (default id), streamed. Cells that a spreadsheet would run as a formula
    (starting with `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'`. Counts against the
    per-user limit of expensive requests (429 `rate_limited`).
    """
    request_limits.check("export", g.user)
    cursor = batch_service.iter_export_rows(list_filter(query), query.sort or batch_service.DEFAULT_SORT)
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
                    headers={"Content-Disposition": EXPORT_DISPOSITION})
