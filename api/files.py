"""Lead operations on mask files: sync, auto-create, check.

Sync, auto-create and the full check start background jobs (jobs.py) and answer 202 at once;
`GET /api/check-mongo-files` stays a quick synchronous audit.
"""
from flask import Blueprint, current_app, g, jsonify, request

import file_sync
import jobs
from api.jobs import accepted, wait_arg
from auth import require_role
from errors import bad_request
from validation import int_arg, json_body

bp = Blueprint("files", __name__, url_prefix="/api")

MAX_LIST_LIMIT = 10_000


def _optional_body(allowed):
    """An optional JSON object body (an empty body is fine)."""
    if not request.get_data(cache=True):
        return {}
    return json_body(allowed)


@bp.post("/sync-batch-files")
@require_role("lead")
def sync_batch_files():
    _optional_body(set())
    wait = wait_arg()
    return accepted(jobs.enqueue("sync", g.user["username"], unit="files"), wait)


@bp.post("/auto-create-batches")
@require_role("lead")
def auto_create_batches():
    body = _optional_body({"limit"})
    default = current_app.config["AUTO_CREATE_LIMIT"]
    limit = int_arg("limit", default, 1, default)
    if "limit" in body:
        limit = body["limit"]
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)  # 918.0 is the number 918 in JSON
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= default:
            raise bad_request(f"'limit' must be a whole number from 1 to {default}.", "out_of_range")
    wait = wait_arg()
    return accepted(jobs.enqueue("auto_create", g.user["username"], {"limit": limit}, unit="files"), wait)


@bp.get("/check-mongo-files")
@require_role("lead")
def check_mongo_files():
    return jsonify(file_sync.check(int_arg("limit", 100, 1, MAX_LIST_LIMIT)))


@bp.post("/check-mongo-files")
@require_role("lead")
def check_mongo_files_job():
    _optional_body(set())
    limit = int_arg("limit", 100, 1, MAX_LIST_LIMIT)
    wait = wait_arg()
    return accepted(jobs.enqueue("check", g.user["username"], {"limit": limit}, unit="files"), wait)
