"""Team progress figures for the overview."""
from flask import Blueprint, jsonify

import dashboard_stats
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("stats", __name__, url_prefix="/api")


@bp.get("/metrics")
@operation("team", {200: Reply("The figures.", schemas.TeamMetrics)})
def metrics():
    """Team progress figures (cached for a few seconds)"""
    return jsonify(dashboard_stats.team_metrics())
