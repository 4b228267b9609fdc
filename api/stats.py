"""Progress figures: the team's for the overview, a user's own for their queue."""
from flask import Blueprint, g, jsonify

import batch_service
import dashboard_stats
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("stats", __name__, url_prefix="/api")


@bp.get("/metrics")
@operation("team", {200: Reply("The figures.", schemas.TeamMetrics)})
def metrics():
    """Team progress figures (cached for a few seconds)"""
    return jsonify(dashboard_stats.team_metrics())


@bp.get("/me/summary")
@operation("team", {200: Reply("The caller's figures.", schemas.MySummary)})
def my_summary():
    """The caller's own figures: their batches per status, masks and images in them"""
    return jsonify(batch_service.summary_for(g.user["username"]))
