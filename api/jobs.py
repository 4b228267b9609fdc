"""Job records of long operations (sync, auto-create …)."""
from flask import Blueprint, jsonify

import jobs
from auth import require_role
from validation import choice_arg, int_arg

bp = Blueprint("jobs", __name__, url_prefix="/api")


@bp.get("/jobs")
@require_role("lead")
def list_jobs():
    kind = choice_arg("kind", jobs.KINDS)
    return jsonify({"items": jobs.recent(kind, int_arg("limit", 20, 1, 100))})


@bp.get("/jobs/<job_id>")
@require_role("lead")
def get_job(job_id):
    return jsonify(jobs.get(job_id))
