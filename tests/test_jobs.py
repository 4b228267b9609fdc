"""The job lease: short, renewed by a heartbeat while the job runs, separate from the job's deadline."""
import threading
import time
import uuid
from datetime import timedelta

import pytest
from bson import ObjectId

import file_sync
import jobs
from factories import insert_batches, insert_mask_files
from helpers import build_app, make_user

SYNC = "/api/sync-batch-files"


@pytest.fixture
def make_app(mongo_uri):
    """Apps with their own settings, each on a fresh database (dropped afterwards)."""
    import db

    made = []

    def make(**config):
        application = build_app(mongo_uri, f"segdash_jobs_{uuid.uuid4().hex[:12]}", **config)
        with application.app_context():
            db.ensure_indexes()
        made.append(application)
        return application

    yield make
    for application in made:
        with application.app_context():
            db.client().drop_database(application.config["MONGO_DB"])


def database_of(application):
    import db

    with application.app_context():
        return db.database()


def lease_threads():
    return [t for t in threading.enumerate() if t.name.startswith("lease-") and t.is_alive()]


def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)


@pytest.fixture
def held_scan(monkeypatch):
    """Makes the sync's scan wait until the test releases it (bounded), holding the job open."""
    release = threading.Event()
    real_scan = file_sync.scan_unlinked

    def scan(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        assert release.wait(60), "the test never released the scan"
        return result

    monkeypatch.setattr(file_sync, "scan_unlinked", scan)
    return release


def start_in_thread(application, headers, path=SYNC):
    outcome = {}

    def run():
        response = application.test_client().post(path, headers=headers)
        outcome["status"], outcome["body"] = response.status_code, response.get_json()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_job_longer_than_its_lease_keeps_it(make_app, held_scan):
    """With a 1 s lease the job is held for as long as it runs: no other worker takes it over."""
    application = make_app(JOB_LEASE_SECONDS=1)
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_batches(database, [1, 2])
    file_ids = insert_mask_files(database, ["batch_0001/a.png", "batch_0002/b.png"])

    thread, outcome = start_in_thread(application, lead)
    job = wait_for(lambda: database.jobs.find_one({"kind": "sync", "state": "running"}))
    first_lease = job["lease_until"]
    # Three lease periods later the job still runs, its lease renewed past the first one.
    wait_for(lambda: time.time() > first_lease.timestamp() + 2.5, interval=0.1)
    renewed = database.jobs.find_one({"_id": job["_id"]})
    assert renewed["state"] == "running" and renewed["lock"] == "sync"
    assert renewed["lease_until"] > first_lease

    second = application.test_client().post(SYNC, headers=lead)
    assert second.status_code == 409
    assert second.get_json()["job_id"] == str(job["_id"])

    held_scan.set()
    thread.join(60)
    assert outcome["status"] == 200, outcome
    assert outcome["body"]["job_id"] == str(job["_id"])
    assert outcome["body"]["files_linked"] == len(file_ids)
    done = database.jobs.find_one({"_id": job["_id"]})
    assert done["state"] == "done" and "lock" not in done
    assert database.jobs.count_documents({}) == 1
    assert lease_threads() == []


def test_the_heartbeat_stops_when_the_job_ends(make_app, monkeypatch):
    application = make_app(JOB_LEASE_SECONDS=1)
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_batches(database, [1])
    insert_mask_files(database, ["batch_0001/a.png"])
    real_scan = file_sync.scan_unlinked

    def slow_scan(*args, **kwargs):
        time.sleep(1.0)  # three heartbeat intervals
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(file_sync, "scan_unlinked", slow_scan)
    response = application.test_client().post(SYNC, headers=lead)
    assert response.status_code == 200, response.get_data(as_text=True)
    # Stopped (and joined) before the response: no renewal after the job's end.
    assert lease_threads() == []
    job = database.jobs.find_one({"_id": ObjectId(response.get_json()["job_id"])})
    assert job["state"] == "done" and "lock" not in job
    assert job["lease_until"] > job["started_at"] + timedelta(seconds=1)  # it was renewed meanwhile


def test_the_heartbeat_stops_when_the_job_fails(make_app, monkeypatch):
    application = make_app(JOB_LEASE_SECONDS=1)
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_mask_files(database, ["batch_0001/a.png"])

    def broken_scan(*args, **kwargs):
        time.sleep(0.5)
        raise RuntimeError("scan broke")

    monkeypatch.setattr(file_sync, "scan_unlinked", broken_scan)
    response = application.test_client().post(SYNC, headers=lead)
    assert response.status_code == 500
    assert lease_threads() == []
    job = database.jobs.find_one({"kind": "sync"})
    assert job["state"] == "failed" and job["error"] == "RuntimeError" and "lock" not in job
    # The lease is free: the next sync runs.
    monkeypatch.undo()
    assert application.test_client().post(SYNC, headers=lead).status_code == 200


def test_a_job_taken_over_is_not_renewed_again(make_app):
    """When another worker took the job over (its lease had run out), the heartbeat gives up."""
    application = make_app(JOB_LEASE_SECONDS=1)
    database = database_of(application)
    with application.app_context():
        job = jobs.start("sync", "lead1")
        with jobs.keep_lease(job):
            wait_for(lambda: database.jobs.find_one({"_id": job["_id"]})["lease_until"] > job["lease_until"])
            database.jobs.update_one({"_id": job["_id"]}, {"$set": {"state": "failed"}, "$unset": {"lock": ""}})
            taken_over = database.jobs.find_one({"_id": job["_id"]})["lease_until"]
            wait_for(lambda: not lease_threads(), timeout=10)
            assert database.jobs.find_one({"_id": job["_id"]})["lease_until"] == taken_over


def test_the_job_deadline_is_the_job_timeout_not_the_lease(make_app, monkeypatch):
    """A job past JOB_TIMEOUT_SECONDS fails (and frees its lease) however long the lease."""
    application = make_app(JOB_LEASE_SECONDS=60, JOB_TIMEOUT_SECONDS=1)
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_batches(database, [1])
    (file_id,) = insert_mask_files(database, ["batch_0001/a.png"])
    real_scan = file_sync.scan_unlinked

    def slow_scan(*args, **kwargs):
        scan = real_scan(*args, **kwargs)
        time.sleep(1.5)  # past the deadline: the next database command is refused
        return scan

    monkeypatch.setattr(file_sync, "scan_unlinked", slow_scan)
    response = application.test_client().post(SYNC, headers=lead)
    assert response.status_code == 504, response.get_data(as_text=True)
    assert set(response.get_json()) == {"error", "message", "request_id"}
    assert response.get_json()["error"] == "database_timeout"
    job = database.jobs.find_one({"kind": "sync"})
    assert job["state"] == "failed" and job["error"] == "ExecutionTimeout" and "lock" not in job
    assert database.mask_records.find_one({"file_id": file_id}) is None
    assert lease_threads() == []


def test_the_default_lease_is_far_shorter_than_the_job_it_guards(monkeypatch):
    """A dead worker's job is taken over soon, while a live one renews its lease."""
    from config import load_settings

    for name in ("JOB_LEASE_SECONDS", "JOB_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings["JOB_LEASE_SECONDS"] * 5 <= settings["JOB_TIMEOUT_SECONDS"]
