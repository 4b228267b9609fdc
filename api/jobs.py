"""Job records of long operations (sync, auto-create …)."""
from flask import Blueprint, jsonify

import jobs
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("jobs", __name__, url_prefix="/api")


@bp.get("/jobs")
@operation("jobs", {200: Reply("The jobs.", schemas.JobList)}, role="lead", query=schemas.JobsQuery)
def list_jobs(query):
    """Recent jobs, newest first (lead)"""
    return jsonify({"items": jobs.recent(query.kind, query.limit)})


@bp.get("/jobs/<job_id>")
@operation("jobs", {200: Reply("The job.", schemas.Job)}, role="lead")
def get_job(job_id):
    """A job's state and progress (lead)

    `job_id` is the job's id (24 hex digits); anything else is 404.
    """
    return jsonify(jobs.get(job_id))
