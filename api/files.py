"""Lead operations on mask files: sync, auto-create, check.

Sync, auto-create and the full check start background jobs (jobs.py) and answer 202 at once;
`GET /api/check-mongo-files` stays a quick synchronous audit.
"""
from flask import Blueprint, current_app, g, jsonify

import file_sync
import jobs
import request_limits
from api import schemas
from api.contract import Reply, operation
from api.jobs import accepted, job_replies

bp = Blueprint("files", __name__, url_prefix="/api")


@bp.post("/sync-batch-files")
@operation("files", job_replies("the sync's counts"), role="lead", query=schemas.WaitQuery,
           body=schemas.NoOptions, body_optional=True, errors=(409,))
def sync_batch_files(query, body):
    """Start linking every unlinked mask file to its batch (lead)

    A background job, run in chunks by a job runner. Incremental and idempotent. Each file
    becomes a version of its name in its batch (a mask record). Files naming a reviewed
    batch are left unlinked and reported as `closed`. One sync is queued or runs at a time
    across all workers and hosts: while one does, another request answers 409
    `job_running` with its `job_id`.
    """
    return accepted(jobs.enqueue("sync", g.user["username"], unit="files"), query.wait)


@bp.post("/auto-create-batches")
@operation("files", job_replies("what was created"), role="lead",
           query=schemas.AutoCreateQuery, body=schemas.AutoCreateOptions, body_optional=True, errors=(409,))
def auto_create_batches(query, body):
    """Start creating the batches that unlinked files name but that do not exist (lead)

    A background job. New batches are `pending`, with one image per file naming them. At most
    `limit` per run (body, else query, else the server's AUTO_CREATE_LIMIT, which is also the
    maximum). Idempotent; one at a time (409 `job_running`).
    """
    limit = body.limit or query.limit or current_app.config["AUTO_CREATE_LIMIT"]
    return accepted(jobs.enqueue("auto_create", g.user["username"], {"limit": limit}, unit="files"), query.wait)


@bp.get("/check-mongo-files")
@operation("files", {200: Reply("The findings.", schemas.CheckResult)}, role="lead", query=schemas.CheckQuery,
           errors=(429,))
def check_mongo_files(query):
    """Audit the mask files (lead)

    Counts against the per-user limit of expensive requests (429 `rate_limited`).
    """
    request_limits.check("check", g.user)
    return jsonify(file_sync.check(query.limit))


@bp.post("/check-mongo-files")
@operation("files", job_replies("the findings, with the orphaned chunks' examples"), role="lead",
           query=schemas.CheckJobQuery, body=schemas.NoOptions, body_optional=True, errors=(409, 429))
def check_mongo_files_job(query, body):
    """Start the full audit of the mask files (lead)

    A background job: the audit, then a pass over the stored chunks for orphaned ones. One at
    a time (409 `job_running`); counts against the per-user limit of expensive requests
    (429 `rate_limited`).
    """
    request_limits.check("check", g.user)
    return accepted(jobs.enqueue("check", g.user["username"], {"limit": query.limit}, unit="files"), query.wait)
