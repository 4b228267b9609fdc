"""Job records: long operations (sync, auto-create, check, import) and their leases.

Life of a job:
- a request inserts it `queued` (`enqueue`);
- a job runner (jobrunner.py) claims it: `running`, with an `owner` token and a lease
  (`lease_until`) that a heartbeat thread renews every third of JOB_LEASE_SECONDS;
- after each chunk of work the runner saves progress and the resume point (`checkpoint`),
  which also tells it whether a cancel was asked for;
- it ends `done`, `failed` or `cancelled`.
A runner that dies stops renewing: once the lease runs out any runner claims the job again
and resumes it from its last checkpoint. Every update a runner makes names its `owner`
token, so a runner that lost its job (taken over) cannot write into it any more.

Exclusive kinds carry `lock: <kind>` from insertion until their end; a unique sparse index
on `lock` makes a second one impossible while one is queued or running, on any host.
"""
import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app
from flask_babel import gettext as _
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

import db
import job_errors
import metrics
from errors import conflict, not_found
from timeutil import iso, utcnow
from ui_strings import job_label, job_state_label

KINDS = ("sync", "auto_create", "check", "import")
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
EXCLUSIVE = frozenset({"sync", "auto_create", "check"})
# Kinds a runner can pick up from a checkpoint; an import runs in the CLI process that has its file.
RESUMABLE = frozenset({"sync", "auto_create", "check"})
MAX_LIST = 100

log = logging.getLogger(__name__)


class Stop(Exception):
    """Raised at a safe point: the job must stop there (cancelled, or its runner shutting down)."""


class Cancelled(Stop):
    pass


class ShuttingDown(Stop):
    pass


class LeaseLost(Exception):
    """The job is no longer this runner's: taken over after its lease ran out, or ended elsewhere."""


def lease_seconds():
    return max(1, current_app.config["JOB_LEASE_SECONDS"])


def runner_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def _new(kind, started_by, state, params=None, total=None, unit=None):
    now = utcnow()
    job = {"_id": ObjectId(), "kind": kind, "state": state, "params": params or {},
           "progress": {"done": 0, "total": total, "unit": unit}, "result": None, "error": None,
           "started_by": started_by, "created_at": now, "started_at": None, "finished_at": None,
           "cancel_requested": False, "attempts": 0}
    if kind in EXCLUSIVE:
        job["lock"] = kind
    return job


def enqueue(kind, started_by, params=None, unit=None):
    """Insert a queued job; 409 `job_running` with the active job's id when one of `kind` holds the lock."""
    job = _new(kind, started_by, "queued", params, unit=unit)
    try:
        db.jobs().insert_one(job)
    except DuplicateKeyError:
        active = db.jobs().find_one({"lock": kind}, {"_id": 1})
        raise conflict(_("A %(kind)s job is already queued or running.", kind=job_label(kind)), "job_running",
                       job_id=str(active["_id"]) if active else None) from None
    return job


def start_here(kind, started_by, total=None, unit=None, params=None):
    """A job run by this process itself (the CLI's import): inserted running, with its lease."""
    job = _new(kind, started_by, "running", params, total, unit)
    now = job["created_at"]
    job.update(owner=uuid.uuid4().hex, runner=runner_name(), started_at=now, attempts=1,
               lease_until=now + timedelta(seconds=lease_seconds()),
               run={"since": now, "done": 0}, progress_at=now)
    try:
        db.jobs().insert_one(job)
    except DuplicateKeyError:
        raise conflict(_("A %(kind)s job is already running.", kind=job_label(kind)), "job_running") from None
    return job


def claim(kinds=RESUMABLE):
    """Take the oldest queued job, else a running one whose lease ran out; None when there is none.

    A running job of a kind no runner can resume (an import whose process died) is marked failed.
    """
    now = utcnow()
    owner = uuid.uuid4().hex
    taken = {"state": "running", "owner": owner, "runner": runner_name(),
             "lease_until": now + timedelta(seconds=lease_seconds()), "claimed_at": now}
    job = _take({"state": "queued", "kind": {"$in": sorted(kinds)}}, {**taken, "started_at": now})
    if job is None:
        job = _take({"state": "running", "lease_until": {"$lt": now}, "kind": {"$in": sorted(kinds)}}, taken)
        if job is not None:
            log.warning("resuming job %s (%s) after its runner stopped; attempt %s",
                        job["_id"], job["kind"], job["attempts"])
    if job is None:
        _fail_orphans(now)
        return None
    # Where this run began, for its rate; stored with the first checkpoint.
    job["run"] = {"since": now, "done": (job.get("progress") or {}).get("done") or 0}
    return job


def _take(query, fields, attempts=5):
    """The oldest job matching `query`, given `fields` and one more attempt if this call was first.

    A read by the (state, created_at) index, then an update conditional on `query` still holding,
    rather than one findAndModify: the embedded server answers findAndModify with a scan of the
    whole collection (0.2 s at 5,000 jobs, every poll of every idle runner). When another runner
    took the job in between, the next oldest is tried.
    """
    for _attempt in range(attempts):
        job = db.jobs().find_one(query, sort=[("created_at", 1)])
        if job is None:
            return None
        taken = db.jobs().update_one({**query, "_id": job["_id"]}, {"$set": fields, "$inc": {"attempts": 1}})
        if taken.modified_count:
            job.update(fields, attempts=job.get("attempts", 0) + 1)
            return job
    return None


_orphans_checked = {}  # jobs collection -> when this process last looked


def _fail_orphans(now):
    """Jobs run by a process that died and that no runner can resume: recorded failed.

    Looked for at most once a lease period per process: idle runners poll often.
    """
    key = db.jobs().full_name
    last = _orphans_checked.get(key)
    if last is not None and (now - last).total_seconds() < lease_seconds():
        return
    _orphans_checked[key] = now
    db.jobs().update_many(
        {"state": "running", "lease_until": {"$lt": now}, "kind": {"$nin": sorted(RESUMABLE)}},
        {"$set": {"state": "failed", **job_errors.record("runner_stopped"), "finished_at": now},
         "$unset": {"lock": "", "owner": ""}})


def _mine(job):
    return {"_id": job["_id"], "owner": job["owner"]}


def checkpoint(job, done, total, unit, resume=None, shutting_down=False):
    """Save progress (and the resume point) of a job this runner owns; then stop if asked to.

    Raises Cancelled when a cancel was requested, ShuttingDown when `shutting_down`,
    LeaseLost when the job is no longer ours. One round trip (a second when it stops).
    """
    now = utcnow()
    run = job.setdefault("run", {"since": now, "done": 0})
    if run.setdefault("unit", unit) != unit:  # a stage counted in other units: its own rate
        job["run"] = {"since": now, "done": done, "unit": unit}
    job["progress"] = {"done": done, "total": total, "unit": unit}
    fields = {"progress": job["progress"], "progress_at": now, "run": job["run"]}
    if resume is not None:
        fields["resume"] = resume
    # update_one rather than findAndModify (see _take): a cancel request makes it match nothing,
    # and only then a read tells a cancel from a lost lease.
    saved = db.jobs().update_one({**_mine(job), "state": "running", "cancel_requested": {"$ne": True}},
                                 {"$set": fields})
    if not saved.matched_count:
        found = db.jobs().find_one({**_mine(job), "state": "running"}, {"cancel_requested": 1})
        if found is None:
            raise LeaseLost(str(job["_id"]))
        raise Cancelled()
    if shutting_down:
        raise ShuttingDown()


def reload(job):
    """The job as stored, while this runner still owns it (LeaseLost otherwise)."""
    found = db.jobs().find_one({**_mine(job), "state": "running"})
    if found is None:
        raise LeaseLost(str(job["_id"]))
    found["run"] = job.get("run") or found.get("run")
    return found


def _end(job, state, fields):
    now = utcnow()
    # Counted first: the job ended even when recording that fails too (database down).
    metrics.observe_job(job["kind"], state, job.get("started_at") or now, now)
    db.jobs().update_one(
        _mine(job), {"$set": {"state": state, "finished_at": now, **fields},
                     "$unset": {"lock": "", "owner": "", "lease_until": ""}})


def finish(job, result):
    progress = dict(job.get("progress") or {})
    if progress.get("total") is not None:
        progress["done"] = max(progress.get("done") or 0, progress["total"])
    _end(job, "done", {"result": result, "progress": progress})


def fail(job, error, result=None):
    """End the job failed; `error` is a job_errors.record()."""
    _end(job, "failed", {**error, "result": result})


def cancelled(job, result=None):
    _end(job, "cancelled", {"result": result, "error": None})


def release(job):
    """Hand a running job back to the queue (its runner is shutting down): another runner resumes it at once."""
    db.jobs().update_one(_mine(job), {"$set": {"state": "queued"},
                                      "$unset": {"owner": "", "lease_until": "", "runner": ""}})


class _Heartbeat:
    """A daemon thread renewing one job's lease every third of the lease, until stopped.

    It dies with its process: a killed runner stops renewing and the lease runs out.
    """

    def __init__(self, job):
        self._collection = db.jobs()  # the thread has no app context; collections are thread-safe
        self._filter = _mine(job)
        self._seconds = lease_seconds()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job['_id']}", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        # Waits out a renewal in flight (bounded), so it lands before the job's end is recorded.
        self._thread.join(self._seconds)

    def _run(self):
        while not self._stopped.wait(self._seconds / 3):
            try:
                renewed = self._collection.update_one(
                    self._filter, {"$set": {"lease_until": utcnow() + timedelta(seconds=self._seconds)}})
            except PyMongoError as exc:
                log.warning("job lease not renewed: %s", exc.__class__.__name__)
                continue
            if renewed.matched_count == 0:
                log.warning("job %s is no longer ours; no longer renewing its lease", self._filter["_id"])
                return


@contextmanager
def keep_lease(job):
    """Renew `job`'s lease while the block runs in this process."""
    heartbeat = _Heartbeat(job)
    heartbeat.start()
    try:
        yield job
    finally:
        heartbeat.stop()


# ------------------------------------------------------------------ reading and cancelling


def _oid(job_id):
    try:
        return ObjectId(job_id)
    except (InvalidId, TypeError):
        raise not_found(_("No job %(id)s.", id=str(job_id)[:40])) from None


def find(job_id):
    job = db.jobs().find_one({"_id": _oid(job_id)}, PUBLIC_FIELDS)
    if job is None:
        raise not_found(_("No job %(id)s.", id=str(job_id)[:40]))
    return job


def get(job_id):
    return public(find(job_id))


def recent(kind=None, state=None, limit=20):
    query = {}
    if kind:
        query["kind"] = kind
    if state:
        query["state"] = state
    cursor = db.jobs().find(query, PUBLIC_FIELDS).sort("created_at", -1).limit(min(limit, MAX_LIST))
    return [public(job) for job in cursor]


def request_cancel(job_id):
    """Cancel a queued job at once; ask a running one to stop at its next safe point.

    A running job whose runner died (lease run out) is cancelled at once too. 409 once finished.
    """
    oid = _oid(job_id)
    now = utcnow()
    stopped = {"$set": {"state": "cancelled", "finished_at": now, "cancel_requested": True},
               "$unset": {"lock": "", "owner": "", "lease_until": ""}}
    job = db.jobs().find_one_and_update(
        {"_id": oid, "$or": [{"state": "queued"}, {"state": "running", "lease_until": {"$lt": now}}]},
        stopped, projection=PUBLIC_FIELDS, return_document=ReturnDocument.AFTER)
    if job is None:
        job = db.jobs().find_one_and_update(
            {"_id": oid, "state": "running"}, {"$set": {"cancel_requested": True}},
            projection=PUBLIC_FIELDS, return_document=ReturnDocument.AFTER)
    if job is None:
        job = find(job_id)  # 404 when unknown
        raise conflict(_("The job is already %(state)s.", state=job_state_label(job["state"])), "job_finished",
                       job_id=str(job["_id"]))
    return public(job)


PUBLIC_FIELDS = {"kind": 1, "state": 1, "progress": 1, "result": 1, "error": 1, "error_code": 1,
                 "error_params": 1, "started_by": 1,
                 "created_at": 1, "started_at": 1, "finished_at": 1, "cancel_requested": 1,
                 "attempts": 1, "run": 1, "progress_at": 1, "runner": 1}


def _rate(job, progress):
    """Units per second since this run began (a resumed run counts from its resume), and seconds left."""
    run = job.get("run") or {}
    since, base = run.get("since"), run.get("done") or 0
    until = job.get("finished_at") or job.get("progress_at")
    done, total = progress.get("done") or 0, progress.get("total")
    if not since or not until or done <= base:
        return None, None
    seconds = (until - since).total_seconds()
    if seconds <= 0:
        return None, None
    rate = (done - base) / seconds
    eta = None
    if job.get("state") == "running" and total is not None:
        eta = round(max(0, total - done) / rate, 1)
    return round(rate, 1), eta


def public(job):
    progress = job.get("progress") or {}
    progress = {"done": progress.get("done") or 0, "total": progress.get("total"), "unit": progress.get("unit")}
    rate, eta = _rate(job, progress)
    return {"id": str(job["_id"]), "kind": job.get("kind"), "state": job.get("state"), "progress": progress,
            "rate_per_s": rate, "eta_s": eta, "result": job.get("result"), "error": job.get("error"),
            "error_code": job.get("error_code"), "error_message": job_errors.message(job),
            "started_by": job.get("started_by"), "created_at": iso(job.get("created_at")),
            "started_at": iso(job.get("started_at")), "finished_at": iso(job.get("finished_at")),
            "cancel_requested": bool(job.get("cancel_requested")), "attempts": job.get("attempts") or 0,
            "runner": job.get("runner")}
