"""Background jobs (sync, auto-create, check, import): their state, progress and cancel (leads)."""
import time

from flask import Blueprint, jsonify, url_for

import jobs
from api import schemas
from api.contract import Reply, operation

bp = Blueprint("jobs", __name__, url_prefix="/api")


def _wait_for_end(job_id, seconds):
    """The job once it ended within `seconds`, else None (polled, backing off to 0.25 s)."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while True:
        job = jobs.find(job_id)
        if job["state"] in jobs.FINISHED:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(0.25, pause * 2)


def accepted(job, wait):
    """202 {job_id, state} with Location; 200 with the finished job when it ends within `wait` s."""
    job_id = str(job["_id"])
    if wait:
        ended = _wait_for_end(job_id, wait)
        if ended is not None:
            return jsonify({"job_id": job_id, **jobs.public(ended)})
    response = jsonify({"job_id": job_id, "state": job["state"]})
    response.status_code = 202
    response.headers["Location"] = url_for("jobs.get_job", job_id=job_id)
    return response


def job_replies(what):
    """The answers of a route that starts a job: 202 at once, or 200 once it ended within `?wait`."""
    return {
        200: Reply(f"The job ended within `wait` seconds: the job, with its `job_id`; its `result` is {what}.",
                   schemas.JobEnded),
        202: Reply("The job is queued; follow it at `Location` (GET /api/jobs/{job_id}).", schemas.JobAccepted,
                   headers={"Location": {"type": "string", "description": "The job's URL."}}),
    }


@bp.get("/jobs")
@operation("jobs", {200: Reply("The jobs.", schemas.JobList)}, role="lead", query=schemas.JobsQuery)
def list_jobs(query):
    """Recent jobs, newest first (lead)"""
    return jsonify({"items": jobs.recent(query.kind, query.state, query.limit)})


@bp.get("/jobs/<job_id>")
@operation("jobs", {200: Reply("The job.", schemas.Job)}, role="lead")
def get_job(job_id):
    """A job's state and progress (lead)

    `job_id` is the job's id (24 hex digits); anything else is 404.
    """
    return jsonify(jobs.get(job_id))


@bp.post("/jobs/<job_id>/cancel")
@operation("jobs", {200: Reply("The job: cancelled, or asked to stop at its next safe point.", schemas.Job)},
           role="lead", errors=(409,))
def cancel_job(job_id):
    """Cancel a job (lead)

    A queued job (or one whose runner stopped) is cancelled at once; a running one stops at
    its next checkpoint (`cancel_requested` true until then). 409 `job_finished` once it ended.
    """
    return jsonify(jobs.request_cancel(job_id))
