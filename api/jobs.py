"""Background jobs (sync, auto-create, check, import): their state, progress and cancel (leads)."""
import time

from flask import Blueprint, jsonify, url_for

import jobs
from auth import require_role
from validation import choice_arg, int_arg

bp = Blueprint("jobs", __name__, url_prefix="/api")

MAX_WAIT_SECONDS = 30


def wait_arg():
    """`?wait=S`: how long (0-30 s) the request may wait for the job it starts to end."""
    return int_arg("wait", 0, 0, MAX_WAIT_SECONDS)


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


@bp.get("/jobs")
@require_role("lead")
def list_jobs():
    kind = choice_arg("kind", jobs.KINDS)
    state = choice_arg("state", jobs.STATES)
    return jsonify({"items": jobs.recent(kind, state, int_arg("limit", 20, 1, jobs.MAX_LIST))})


@bp.get("/jobs/<job_id>")
@require_role("lead")
def get_job(job_id):
    return jsonify(jobs.get(job_id))


@bp.post("/jobs/<job_id>/cancel")
@require_role("lead")
def cancel_job(job_id):
    return jsonify(jobs.request_cancel(job_id))
