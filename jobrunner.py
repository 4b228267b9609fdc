"""The job runner: runs queued jobs outside any request (`flask --app app run-jobs`).

Run one per host beside Gunicorn (start_optimized.sh does). It polls the `jobs` collection
every JOB_POLL_SECONDS and claims the oldest queued job, or a running one whose lease ran
out (its runner died): the lease in MongoDB decides which runner of which host runs a job.
While a job runs, a heartbeat thread renews its lease and the job saves progress and its
resume point after each chunk (jobs.checkpoint), where it also stops when cancelled.

A database outage never ends the runner: the job waits (up to JOB_RETRY_SECONDS without a
checkpoint) and goes on from its last checkpoint when the database is back. SIGTERM or
Ctrl-C stop it at the next checkpoint and hand the job back to the queue for another runner.
"""
import copy
import logging
import signal
import threading
import time

import click
import pymongo
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import ngettext
from pymongo.errors import ConnectionFailure, CursorNotFound, ExecutionTimeout, PyMongoError

import file_sync
import job_errors
import jobs
from timeutil import utcnow

WORK = {"sync": file_sync.sync_job, "auto_create": file_sync.auto_create_job, "check": file_sync.check_job}
MAX_BACKOFF = 5.0

log = logging.getLogger(__name__)


class JobContext:
    """What a job's work function sees of its job (see file_sync's jobs)."""

    def __init__(self, job, runner):
        config = current_app.config
        self.job = job
        self.job_id = job["_id"]
        self.params = job.get("params") or {}
        self.resume = job.get("resume") or {}
        self.started_at = job.get("started_at") or utcnow()
        self.chunk_size = max(1, config["SYNC_CHUNK_SIZE"])
        self.partial = None
        self.checkpoints = 0
        self._step_seconds = config["JOB_TIMEOUT_SECONDS"]
        self._runner = runner

    def step(self):
        """Bounds the database work of one step (a chunk) by JOB_TIMEOUT_SECONDS."""
        return pymongo.timeout(self._step_seconds)

    def checkpoint(self, done, total, unit, resume=None, partial=None):
        """Save progress (and the resume point); raises jobs.Stop when the job must stop here."""
        if partial is not None:
            self.partial = copy.deepcopy(partial)
        jobs.checkpoint(self.job, done, total, unit, resume, shutting_down=self._runner.stopping)
        self.checkpoints += 1


def _database_away(exc):
    """The database could not be reached (also when a bulk write reports that as its cause), or
    a restarted server lost the job's cursor: either way the job goes on from its checkpoint."""
    for found in (exc, getattr(exc, "error", None), exc.__cause__):
        if isinstance(found, (ConnectionFailure, CursorNotFound)):
            return True
    return False


def _describe(exc):
    if isinstance(exc, ExecutionTimeout):
        return job_errors.record("step_timeout", seconds=current_app.config["JOB_TIMEOUT_SECONDS"])
    return job_errors.record("unexpected", exception=exc.__class__.__name__)


class Runner:
    def __init__(self, app):
        self.app = app
        self._stop = threading.Event()

    @property
    def stopping(self):
        return self._stop.is_set()

    def stop(self):
        self._stop.set()

    def run_forever(self):
        """Poll and run jobs until stopped; no error ends the loop."""
        with self.app.app_context():
            poll = self.app.config["JOB_POLL_SECONDS"]
            backoff = poll
            while not self._stop.is_set():
                try:
                    ran = self.run_once()
                    backoff = poll
                except PyMongoError as exc:
                    log.warning("job runner: database unavailable (%s); retrying", exc.__class__.__name__)
                    ran, backoff = False, min(MAX_BACKOFF, max(poll, backoff * 2))
                except Exception:  # noqa: BLE001 - a runner must outlive any one bad job
                    log.exception("job runner: unexpected error")
                    ran = False
                if not ran:
                    self._stop.wait(backoff)

    def drain(self):
        """Run the jobs waiting now, one after the other (tests, benchmarks, `run-jobs --once`)."""
        with self.app.app_context():
            ran = 0
            while not self._stop.is_set() and self.run_once():
                ran += 1
            return ran

    def start_thread(self):
        thread = threading.Thread(target=self.run_forever, name="job-runner", daemon=True)
        thread.start()
        return thread

    def run_once(self):
        """Claim one job and run it to its end (or until this runner loses it); False when none waits."""
        job = jobs.claim(WORK.keys())
        if job is None:
            return False
        log.info("job %s (%s) started, attempt %s", job["_id"], job["kind"], job["attempts"])
        with jobs.keep_lease(job):
            self._run(job)
        return True

    def _run(self, job):
        retry_seconds = self.app.config["JOB_RETRY_SECONDS"]
        failing_since = None
        while True:
            ctx = JobContext(job, self)
            try:
                result = WORK[job["kind"]](ctx)
                jobs.finish(job, result)
                log.info("job %s (%s) done", job["_id"], job["kind"])
                return
            except jobs.Cancelled:
                self._quietly(jobs.cancelled, job, ctx.partial)
                log.info("job %s (%s) cancelled", job["_id"], job["kind"])
                return
            except jobs.ShuttingDown:
                self._quietly(jobs.release, job)
                log.info("job %s (%s) handed back to the queue", job["_id"], job["kind"])
                return
            except jobs.LeaseLost:
                log.warning("job %s (%s) is no longer ours; leaving it", job["_id"], job["kind"])
                return
            except Exception as exc:  # noqa: BLE001 - recorded on the job, or waited out
                if not _database_away(exc):
                    log.exception("job %s (%s) failed", job["_id"], job["kind"])
                    self._quietly(jobs.fail, job, _describe(exc), ctx.partial)
                    return
                if failing_since is None or ctx.checkpoints:
                    failing_since = time.monotonic()
                log.warning("job %s (%s): database unavailable (%s); waiting",
                            job["_id"], job["kind"], exc.__class__.__name__)
                job = self._wait_for_database(job, failing_since, retry_seconds)
                if job is None:
                    return

    def _wait_for_database(self, job, failing_since, retry_seconds):
        """The job as stored once the database answers again; None to give it up."""
        backoff = 0.5
        while True:
            if time.monotonic() - failing_since > retry_seconds:
                self._quietly(jobs.fail, job, job_errors.record("database_unreachable", seconds=retry_seconds))
                return None
            if self._stop.wait(backoff):
                return None  # shutting down: the lease runs out and another runner resumes it
            backoff = min(MAX_BACKOFF, backoff * 2)
            try:
                return jobs.reload(job)
            except jobs.LeaseLost:
                log.warning("job %s was taken over while the database was away", job["_id"])
                return None
            except PyMongoError:
                continue

    @staticmethod
    def _quietly(record, *args):
        """Record a job's end; when the database is away the lease runs out and a runner finishes it."""
        try:
            record(*args)
        except PyMongoError as exc:
            log.warning("job end not recorded: %s", exc.__class__.__name__)


@click.command("run-jobs")
@click.option("--once", is_flag=True, help="Run the jobs waiting now, then exit.")
@with_appcontext
def run_jobs_command(once):
    """Run queued sync, auto-create and check jobs (one runner per host)."""
    runner = Runner(current_app._get_current_object())
    if once:
        ran = runner.drain()
        click.echo(ngettext("%(num)s job run", "%(num)s jobs run", ran))
        return

    def stop(signum, _frame):
        log.info("job runner stopping (signal %s)", signum)
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("job runner started (poll every %s s)", current_app.config["JOB_POLL_SECONDS"])
    runner.run_forever()
    log.info("job runner stopped")


def init_app(app):
    app.cli.add_command(run_jobs_command)
