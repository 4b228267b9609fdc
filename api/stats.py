"""Team progress figures for the overview."""
from flask import Blueprint, jsonify

import dashboard_stats
from auth import require_role

bp = Blueprint("stats", __name__, url_prefix="/api")


@bp.get("/metrics")
@require_role("segmenter")
def metrics():
    return jsonify(dashboard_stats.team_metrics())
