"""A job runner killed with SIGKILL in the middle of a sync, as `kill -9` would.

The sync is queued through the API and run by a job runner process (`flask run-jobs`,
as start_optimized.sh runs it); once the job has written progress, that runner's
process group is killed and a second runner started. Measured: how long after the
kill the second runner took the job over (its lease must run out first:
JOB_LEASE_SECONDS, then within JOB_POLL_SECONDS), how long until the job ended, and
whether every file ended linked exactly once (one record per file, each batch's
count equal to its current records).
"""
import os
import signal
import time

from bson import ObjectId

from bench import datasets, servers
from bench.wait import log


def _wait(predicate, timeout, interval=0.05):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(interval)
    return None


def _unlink_everything():
    """Every file unlinked and the sync's own state forgotten: the next sync reads every file."""
    import db
    import file_sync

    datasets.reset_links()
    db.app_state().delete_one({"_id": file_sync.WATERMARK_ID})
    db.sync_waiting().delete_many({})


def _counts_hold():
    """Batches whose stored mask_count differs from their current records."""
    import db

    current = {row["_id"]: row["n"] for row in db.mask_records().aggregate(
        [{"$match": {"current": True}}, {"$group": {"_id": "$batch_id", "n": {"$sum": 1}}}])}
    wrong = 0
    for doc in db.batches().find({}, {"_id": 0, "id": 1, "mask_count": 1}):
        wrong += (doc.get("mask_count") or 0) != current.get(doc["id"], 0)
    return wrong


def kill_and_resume(app, uri, db_name, token, prof, logs):
    import db
    from cache import record_write

    lease = prof.resume_lease_seconds
    env = {"SYNC_OVERLAP_SECONDS": "0", "JOB_LEASE_SECONDS": str(lease)}
    with app.app_context():
        _unlink_everything()
        record_write()
        files = db.mask_files().estimated_document_count()
    response = app.test_client().post("/api/sync-batch-files", headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 202:
        raise RuntimeError(f"sync: {response.status_code} {response.get_data(as_text=True)[:300]}")
    job_id = ObjectId(response.get_json()["job_id"])
    log(f"kill and resume: a sync over {files} files, runner killed once it wrote progress (lease {lease} s)")
    with app.app_context():
        jobs = db.jobs()
        first = servers.JobRunner(uri, db_name, log_dir=logs, extra_env=env).__enter__()
        try:
            started = _wait(lambda: (jobs.find_one({"_id": job_id}) or {}).get("progress", {}).get("done"), 120)
            if not started:
                raise RuntimeError("the first runner wrote no progress within 120 s")
        finally:
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait()
        killed_at = time.perf_counter()
        at_kill = jobs.find_one({"_id": job_id})
        linked_at_kill = db.mask_records().count_documents({})
        running = at_kill.get("state") == "running"  # else it ended before the kill: nothing to resume
        with servers.JobRunner(uri, db_name, log_dir=logs, extra_env=env):
            resumed = running and _wait(
                lambda: (doc := jobs.find_one({"_id": job_id})).get("attempts", 0) >= 2 and doc, lease + 60)
            resumed_after = time.perf_counter() - killed_at if resumed else None
            done = _wait(lambda: (doc := jobs.find_one({"_id": job_id}))["state"] not in ("queued", "running")
                         and doc, 900, interval=0.2)
            finished_after = time.perf_counter() - killed_at if done else None
        records = db.mask_records().count_documents({})
        distinct_files = len(db.mask_records().distinct("file_id"))
        wrong_counts = _counts_hold()
    result = (done or {}).get("result") or {}
    return {"files": files, "lease_seconds": lease, "poll_seconds": app.config["JOB_POLL_SECONDS"],
            "state_at_kill": at_kill.get("state"), "done_at_kill": (at_kill.get("progress") or {}).get("done"),
            "linked_at_kill": linked_at_kill, "resumed_after_s": resumed_after,
            "finished_after_s": finished_after, "state": (done or {}).get("state"),
            "attempts": (done or {}).get("attempts"), "files_linked_by_job": result.get("files_linked"),
            "records": records, "distinct_files": distinct_files, "batches_with_wrong_count": wrong_counts}
