"""Who can be picked in the UI: active users, optionally of one role (leads only)."""
from flask import Blueprint, jsonify

import auth
import db
from auth import require_role
from validation import choice_arg

bp = Blueprint("users", __name__, url_prefix="/api")

MAX_USERS = 1000


@bp.get("/users")
@require_role("lead")
def list_users():
    """[{username, display_name}] of the active users (of `role` when given), by username."""
    role = choice_arg("role", auth.ROLES)
    query = {"active": True, **({"role": role} if role else {})}
    cursor = db.users().find(query, {"_id": 0, "username": 1, "display_name": 1}).sort(
        "username", 1).limit(MAX_USERS)
    return jsonify([{"username": doc["username"], "display_name": doc.get("display_name") or doc["username"]}
                    for doc in cursor])
