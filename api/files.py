"""Lead operations on mask files: sync, auto-create, check."""
from flask import Blueprint, current_app, g, jsonify, request

import file_sync
import request_limits
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
    return jsonify(file_sync.sync(g.user["username"]))


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
    return jsonify(file_sync.auto_create(g.user["username"], limit))


@bp.get("/check-mongo-files")
@require_role("lead")
def check_mongo_files():
    request_limits.check("check", g.user)
    return jsonify(file_sync.check(int_arg("limit", 100, 1, MAX_LIST_LIMIT)))
