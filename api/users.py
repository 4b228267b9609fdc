"""Who can be picked in the UI: active users, optionally of one role (leads only)."""
from flask import Blueprint, jsonify

import batch_service
import db
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("users", __name__, url_prefix="/api")


@bp.get("/users")
@operation("team", {200: Reply(f"At most {schemas.MAX_USERS:,} users.", schemas.UserList)}, role="lead",
           query=schemas.UsersQuery)
def list_users(query):
    """Active users, by username (lead)

    `[{username, display_name}]` of the active users (of `role` when given).
    """
    found = {"active": True, **({"role": query.role} if query.role else {})}
    cursor = db.users().find(found, {"_id": 0, "username": 1, "display_name": 1}).sort(
        "username", 1).limit(schemas.MAX_USERS)
    return jsonify([{"username": doc["username"], "display_name": doc.get("display_name") or doc["username"]}
                    for doc in cursor])


@bp.get("/users/workload")
@operation("team", {200: Reply("Open batches per username.", schemas.Workload)}, role="lead")
def workload():
    """Open batches per segmenter (lead)

    `{username: n}`: batches assigned, in progress or rejected, for choosing whom to assign.
    """
    return jsonify(batch_service.workload())
