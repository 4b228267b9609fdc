"""Liveness and database reachability, for load balancers and people."""
from flask import Blueprint, jsonify

import db
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation("operations", {200: Reply("The database answers.", schemas.Healthy),
                          503: Reply("The database is unreachable.", schemas.Degraded)}, role=None)
def healthz():
    """Liveness and database reachability"""
    if db.ping():
        return jsonify({"status": "ok", "db": "ok"})
    return jsonify({"status": "degraded", "db": "unreachable"}), 503
