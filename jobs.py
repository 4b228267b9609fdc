"""Job records for long operations, and the lease that lets one run at a time.

A running job carries `lock: <kind>`; a unique sparse index on `lock` means a
second job of that kind cannot be inserted while one runs, in any worker on any
host. The lock is removed when the job ends. A job whose worker died keeps its
lock only until `lease_until`: the next start marks it failed and takes over.

The lease is short (JOB_LEASE_SECONDS) and renewed by a heartbeat thread every
third of it while the job runs (`running`, `keep_lease`), so a job may run far longer than
its lease, yet a killed worker frees it within one lease period.
"""
import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app
from flask_babel import gettext as _
from pymongo.errors import DuplicateKeyError, PyMongoError

import db
import metrics
from errors import conflict, not_found
from timeutil import iso, utcnow
from ui_strings import job_label

KINDS = ("sync", "auto_create", "import", "export")

log = logging.getLogger(__name__)


def lease_seconds():
    return max(1, current_app.config["JOB_LEASE_SECONDS"])


def start(kind, started_by, total=None):
    """Insert a running job of `kind`; 409 with the running job's id when one holds the lease."""
    for attempt in range(2):
        now = utcnow()
        job = {"_id": ObjectId(), "kind": kind, "state": "running", "lock": kind,
               "progress": {"done": 0, "total": total}, "result": None, "error": None,
               "started_by": started_by, "started_at": now, "finished_at": None,
               "lease_until": now + timedelta(seconds=lease_seconds())}
        try:
            db.jobs().insert_one(job)
            return job
        except DuplicateKeyError:
            if attempt == 0 and _expire_stale(kind, now):
                continue
            running = db.jobs().find_one({"lock": kind}, {"_id": 1})
            running_id = str(running["_id"]) if running else None
            raise conflict(_("A %(kind)s job is already running.", kind=job_label(kind)), "job_running",
                           job_id=running_id) from None
    raise AssertionError("unreachable")


def _expire_stale(kind, now):
    """Fail the job of `kind` whose lease ran out (its worker died); True when there was one."""
    result = db.jobs().update_one(
        {"lock": kind, "lease_until": {"$lt": now}},
        {"$set": {"state": "failed", "error": "lease expired: the worker running it stopped",
                  "finished_at": now}, "$unset": {"lock": ""}})
    return result.modified_count > 0


class _Heartbeat:
    """A daemon thread renewing one job's lease every third of the lease, until stopped.

    The first renewal comes a third of the lease after the start, so a short job sends none.
    It dies with its process: a killed worker stops renewing and the lease runs out.
    """

    def __init__(self, job):
        self._collection = db.jobs()  # the thread has no app context; collections are thread-safe
        self._filter = {"_id": job["_id"], "lock": job["kind"]}
        self._seconds = lease_seconds()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job['_id']}", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        # Waits out a renewal in flight (bounded), so it lands before the job's end is recorded;
        # one later than that would match nothing, the lock being gone.
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
                log.warning("job %s lost its lease; no longer renewing it", self._filter["_id"])
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


@contextmanager
def running(job):
    """The block does `job`'s work: its lease renewed meanwhile, its database work bounded by
    JOB_TIMEOUT_SECONDS, and the job recorded failed when the block raises.

    The deadline is pymongo's client-side operation timeout, which replaces socketTimeoutMS
    inside it: a large sync's single write can take minutes on a slow server.
    """
    try:
        with keep_lease(job), pymongo.timeout(current_app.config["JOB_TIMEOUT_SECONDS"]):
            yield job
    except Exception as exc:
        fail(job, exc.__class__.__name__)
        raise


def set_progress(job, done, total):
    job["progress"] = {"done": done, "total": total}
    db.jobs().update_one({"_id": job["_id"]}, {"$set": {"progress": job["progress"]}})


def finish(job, result, done=None):
    total = job["progress"]["total"]
    now = utcnow()
    db.jobs().update_one(
        {"_id": job["_id"]},
        {"$set": {"state": "done", "result": result, "finished_at": now,
                  "progress": {"done": total if done is None else done, "total": total}},
         "$unset": {"lock": ""}})
    metrics.observe_job(job["kind"], "done", job["started_at"], now)


def fail(job, message):
    now = utcnow()
    # Counted first: the job failed even when recording that fails too (database down).
    metrics.observe_job(job["kind"], "failed", job["started_at"], now)
    db.jobs().update_one(
        {"_id": job["_id"]},
        {"$set": {"state": "failed", "error": message, "finished_at": now},
         "$unset": {"lock": ""}})


def public(job):
    return {"id": str(job["_id"]), "kind": job.get("kind"), "state": job.get("state"),
            "progress": job.get("progress"), "result": job.get("result"), "error": job.get("error"),
            "started_by": job.get("started_by"), "started_at": iso(job.get("started_at")),
            "finished_at": iso(job.get("finished_at")), "lease_until": iso(job.get("lease_until"))}


def get(job_id):
    try:
        oid = ObjectId(job_id)
    except (InvalidId, TypeError):
        raise not_found(_("No job %(id)s.", id=job_id[:40])) from None
    job = db.jobs().find_one({"_id": oid})
    if job is None:
        raise not_found(_("No job %(id)s.", id=job_id[:40]))
    return public(job)


def recent(kind=None, limit=20):
    query = {"kind": kind} if kind else {}
    return [public(job) for job in db.jobs().find(query).sort("started_at", -1).limit(limit)]
