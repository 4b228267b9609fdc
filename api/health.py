"""Liveness and database reachability, for load balancers and people."""
from flask import Blueprint, jsonify

import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    if db.ping():
        return jsonify({"status": "ok", "db": "ok"})
    return jsonify({"status": "degraded", "db": "unreachable"}), 503
