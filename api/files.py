"""Lead operations on mask files: sync, auto-create, check."""
from flask import Blueprint, current_app, g, jsonify

import file_sync
import request_limits
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("files", __name__, url_prefix="/api")


@bp.post("/sync-batch-files")
@operation("files", {200: Reply("The job's result.", schemas.SyncResult)}, role="lead",
           body=schemas.NoOptions, body_optional=True, errors=(409,))
def sync_batch_files(body):
    """Link every unlinked mask file to its batch (lead)

    Incremental and idempotent. Each file becomes a version of its name in its batch
    (a mask record). Files naming a reviewed batch are left unlinked and reported as
    `closed`. One sync runs at a time across all workers and hosts: while one runs,
    another request answers 409 `job_running` with the running `job_id`.
    """
    return jsonify(file_sync.sync(g.user["username"]))


@bp.post("/auto-create-batches")
@operation("files", {200: Reply("The job's result.", schemas.AutoCreateResult)}, role="lead",
           query=schemas.AutoCreateQuery, body=schemas.AutoCreateOptions, body_optional=True, errors=(409,))
def auto_create_batches(query, body):
    """Create the batches that unlinked files name but that do not exist (lead)

    New batches are `pending`, with one image per file naming them. At most `limit`
    per call (body, else query, else the server's AUTO_CREATE_LIMIT, which is also the
    maximum). Idempotent; one run at a time (409 `job_running`).
    """
    limit = body.limit or query.limit or current_app.config["AUTO_CREATE_LIMIT"]
    return jsonify(file_sync.auto_create(g.user["username"], limit))


@bp.get("/check-mongo-files")
@operation("files", {200: Reply("The findings.", schemas.CheckResult)}, role="lead", query=schemas.CheckQuery,
           errors=(429,))
def check_mongo_files(query):
    """Audit the mask files (lead)

    Counts against the per-user limit of expensive requests (429 `rate_limited`).
    """
    request_limits.check("check", g.user)
    return jsonify(file_sync.check(query.limit))
