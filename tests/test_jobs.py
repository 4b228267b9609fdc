"""Background jobs in one process: 202 and polling, the lease and its heartbeat, progress,
cancel, resume from a checkpoint, a runner handing its job back, the jobs list."""
import threading
import time
import uuid
from datetime import timedelta

import pytest
from bson import ObjectId

import file_sync
import jobrunner
import jobs
from checks import assert_error, job_result
from factories import assert_records_consistent, insert_batches, insert_mask_files
from helpers import indexed_app, make_user, wait_for
from timeutil import utcnow

SYNC = "/api/sync-batch-files"
AUTO = "/api/auto-create-batches"
CHECK = "/api/check-mongo-files"


@pytest.fixture
def make_app(mongo_uri):
    """Apps with their own settings, each on a fresh database (dropped afterwards)."""
    import db

    made = []

    def make(**config):
        config.setdefault("JOB_POLL_SECONDS", 0.02)
        application = indexed_app(mongo_uri, f"segdash_jobs_{uuid.uuid4().hex[:12]}", **config)
        made.append(application)
        return application

    yield make
    for application in made:
        with application.app_context():
            db.client().drop_database(application.config["MONGO_DB"])


@pytest.fixture
def runners():
    """Job runner threads started by a test, stopped afterwards."""
    started = []

    def start(application):
        runner = jobrunner.Runner(application)
        started.append((runner, runner.start_thread()))
        return runner

    yield start
    for runner, thread in started:
        runner.stop()
        thread.join(60)


def database_of(application):
    import db

    with application.app_context():
        return db.database()


def lease_threads():
    return [t for t in threading.enumerate() if t.name.startswith("lease-") and t.is_alive()]


@pytest.fixture
def held_chunks(monkeypatch):
    """Makes a job wait before each chunk until the test releases it (bounded)."""
    release = threading.Event()
    real = file_sync.next_chunk

    def held(*args, **kwargs):
        assert release.wait(60), "the test never released the job"
        return real(*args, **kwargs)

    monkeypatch.setattr(file_sync, "next_chunk", held)
    return release


def broken_scan(monkeypatch):
    """Makes a sync's scan raise (after a moment) until undone: a job that really fails."""
    def broken(*args, **kwargs):
        time.sleep(0.5)
        raise RuntimeError("scan broke")

    monkeypatch.setattr(file_sync, "next_chunk", broken)


def small_world(application, batches=2):
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_batches(database, range(1, batches + 1))
    file_ids = insert_mask_files(database, [f"batch_{n:04d}/a.png" for n in range(1, batches + 1)])
    return database, lead, file_ids


# ---------------------------------------------------------------- 202, Location, polling


def test_sync_answers_202_at_once_and_the_job_is_polled_to_its_end(make_app, runners):
    application = make_app()
    database, lead, file_ids = small_world(application)
    client = application.test_client()
    response = client.post(SYNC, headers=lead)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"job_id", "state"} and body["state"] == "queued"
    assert response.headers["Location"] == f"/api/jobs/{body['job_id']}"
    queued = client.get(response.headers["Location"], headers=lead).get_json()
    assert queued["state"] == "queued" and queued["started_at"] is None and queued["created_at"].endswith("Z")
    assert queued["progress"] == {"done": 0, "total": None, "unit": "files"}

    runners(application)
    job = wait_for(lambda: (j := client.get(response.headers["Location"], headers=lead).get_json())
                   ["state"] == "done" and j)
    assert set(job) >= {"id", "kind", "state", "progress", "rate_per_s", "eta_s", "result", "error", "started_by",
                        "created_at", "started_at", "finished_at"}
    assert job["kind"] == "sync" and job["started_by"] == "lead1" and job["error"] is None
    assert job["progress"] == {"done": 2, "total": 2, "unit": "files"}
    assert job["result"]["files_linked"] == len(file_ids)
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["eta_s"] is None  # finished
    stored = database.jobs.find_one({"_id": ObjectId(job["id"])})
    assert "lock" not in stored and "owner" not in stored
    assert lease_threads() == []


def test_wait_returns_the_job_when_it_ends_in_time_else_202(make_app, runners, held_chunks):
    application = make_app()
    _database, lead, _ids = small_world(application)
    client = application.test_client()
    runners(application)
    started = time.monotonic()
    response = client.post(f"{SYNC}?wait=1", headers=lead)
    assert response.status_code == 202 and time.monotonic() - started >= 1
    job_id = response.get_json()["job_id"]
    held_chunks.set()
    wait_for(lambda: client.get(f"/api/jobs/{job_id}", headers=lead).get_json()["state"] == "done")
    ended = client.post(f"{SYNC}?wait=30", headers=lead)
    assert ended.status_code == 200
    assert ended.get_json()["state"] == "done" and ended.get_json()["result"]["files_scanned"] == 0


@pytest.mark.parametrize("wait", ["31", "-1", "x", "1.5", ""])
def test_bad_wait_is_refused_and_starts_nothing(make_app, wait):
    application = make_app()
    database, lead, _ids = small_world(application)
    for path in (SYNC, AUTO, CHECK):
        response = application.test_client().post(f"{path}?wait={wait}", headers=lead)
        assert_error(response, 400)
    assert database.jobs.count_documents({}) == 0


# ---------------------------------------------------------------- one at a time, the lease


def test_a_job_longer_than_its_lease_keeps_it(make_app, runners, held_chunks):
    """With a 1 s lease the job is held for as long as it runs: no other runner takes it over."""
    application = make_app(JOB_LEASE_SECONDS=1)
    database, lead, file_ids = small_world(application)
    client = application.test_client()
    job_id = ObjectId(client.post(SYNC, headers=lead).get_json()["job_id"])
    runners(application)
    runners(application)  # a second runner (another host) polling the same jobs
    job = wait_for(lambda: database.jobs.find_one({"_id": job_id, "state": "running"}))
    first_lease = job["lease_until"]
    wait_for(lambda: time.time() > first_lease.timestamp() + 2.5, interval=0.1)
    renewed = database.jobs.find_one({"_id": job_id})
    assert renewed["state"] == "running" and renewed["lock"] == "sync"
    assert renewed["lease_until"] > first_lease
    assert renewed["owner"] == job["owner"] and renewed["attempts"] == 1  # never taken over

    second = client.post(SYNC, headers=lead)
    assert second.status_code == 409 and second.get_json()["error"] == "job_running"
    assert second.get_json()["job_id"] == str(job_id)

    held_chunks.set()
    done = wait_for(lambda: database.jobs.find_one({"_id": job_id, "state": "done"}))
    assert done["result"]["files_linked"] == len(file_ids) and "lock" not in done
    assert database.jobs.count_documents({}) == 1
    wait_for(lambda: lease_threads() == [])


def test_a_failing_job_is_recorded_and_frees_the_lock(make_app, runners, monkeypatch):
    application = make_app(JOB_LEASE_SECONDS=1)
    database, lead, _ids = small_world(application)
    runners(application)
    broken_scan(monkeypatch)
    response = application.test_client().post(f"{SYNC}?wait=30", headers=lead)
    assert response.status_code == 200
    job = response.get_json()
    assert job["state"] == "failed" and job["error"] == "an unexpected error (RuntimeError)"
    assert job["error_code"] == "unexpected"
    assert job["result"]["files_linked"] == 0  # what it had done before failing
    assert "lock" not in database.jobs.find_one({"kind": "sync"})
    monkeypatch.undo()
    assert job_result(application.test_client().post(f"{SYNC}?wait=30", headers=lead))["files_linked"] == 2
    wait_for(lambda: lease_threads() == [])


def test_a_job_taken_over_is_left_by_its_old_runner(make_app):
    """When another runner took the job over (the lease had run out), the first one stops renewing
    it and writes nothing more into it at its next checkpoint."""
    application = make_app(JOB_LEASE_SECONDS=1)
    database, lead, _ids = small_world(application)
    application.test_client().post(SYNC, headers=lead)
    with application.app_context():
        job = jobs.claim()
        with jobs.keep_lease(job):
            wait_for(lambda: database.jobs.find_one({"_id": job["_id"]})["lease_until"] > job["lease_until"])
            database.jobs.update_one({"_id": job["_id"]}, {"$set": {"owner": "another runner"}})
            taken_over = database.jobs.find_one({"_id": job["_id"]})["lease_until"]
            wait_for(lambda: not lease_threads(), timeout=10)
            assert database.jobs.find_one({"_id": job["_id"]})["lease_until"] == taken_over
            with pytest.raises(jobs.LeaseLost):
                jobs.checkpoint(job, 1, 2, "files")
    assert database.jobs.find_one({"_id": job["_id"]})["progress"]["done"] == 0


def test_exclusive_kinds_are_independent(make_app):
    application = make_app()
    _database, lead, _ids = small_world(application)
    client = application.test_client()
    assert [client.post(path, headers=lead).status_code for path in (SYNC, AUTO, CHECK)] == [202, 202, 202]
    assert [client.post(path, headers=lead).status_code for path in (SYNC, AUTO, CHECK)] == [409, 409, 409]


# ---------------------------------------------------------------- progress


def test_progress_strictly_increases_during_a_sync_over_20000_files(make_app, runners):
    """Watched through the API while it runs: the figure moves up in many steps to the total."""
    application = make_app(SYNC_CHUNK_SIZE=1000)
    database = database_of(application)
    lead = make_user(application, "lead1", "lead")
    insert_batches(database, range(1, 601))
    names = [f"batch_{n:04d}/img_{k}.png" for n in range(1, 601) for k in range(5)]
    names += [f"unsorted/img_{i:05d}.png" for i in range(17_000)]
    insert_mask_files(database, names)
    client = application.test_client()
    job_id = client.post(SYNC, headers=lead).get_json()["job_id"]
    runners(application)
    seen, settling = [], []  # the files read and linked; then the batches whose counts are settled
    deadline = time.monotonic() + 300
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=lead).get_json()
        if job["state"] == "running" and job["progress"]["total"] is not None:
            stage = seen if job["progress"]["unit"] == "files" else settling
            stage.append((job["progress"]["done"], job["rate_per_s"], job["eta_s"]))
        if job["state"] != "queued" and job["state"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["state"] == "done", job
    assert job["progress"] == {"done": 20_000, "total": 20_000, "unit": "files"}
    values = [done for done, _rate, _eta in seen]
    changes = [b for a, b in zip(values, values[1:]) if b != a]
    assert all(b > a for a, b in zip(values, values[1:]) if b != a), values
    assert values == sorted(values)
    assert len(set(values)) >= 5, values  # many steps, not a jump from 0 to the end
    assert 0 < changes[0] and values[0] < 20_000
    counted = [done for done, _rate, _eta in settling]
    assert counted == sorted(counted) and all(done <= 600 for done in counted), settling
    moving = [(rate, eta) for done, rate, eta in seen if done > 0 and rate]
    assert moving and all(rate > 0 and eta is not None and eta >= 0 for rate, eta in moving)
    assert job["result"]["files_linked"] == 3000 and job["result"]["unmatched"] == 17_000


# ---------------------------------------------------------------- cancel


def test_cancel_a_running_sync_stops_it_at_a_safe_point(make_app, runners, monkeypatch):
    application = make_app(SYNC_CHUNK_SIZE=10)
    database, lead, file_ids = small_world(application, batches=60)
    client = application.test_client()
    real = file_sync.next_chunk

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(file_sync, "next_chunk", slow)
    job_id = client.post(SYNC, headers=lead).get_json()["job_id"]
    runners(application)
    wait_for(lambda: client.get(f"/api/jobs/{job_id}", headers=lead).get_json()["progress"]["done"] > 0)
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=lead)
    assert response.status_code == 200 and response.get_json()["cancel_requested"] is True
    asked = time.monotonic()
    job = wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}", headers=lead).get_json())["state"] != "running"
                   and j, timeout=10)
    assert time.monotonic() - asked < 2
    assert job["state"] == "cancelled" and job["finished_at"]
    linked = database.mask_records.count_documents({})
    assert 0 < linked < len(file_ids)
    assert job["result"]["files_linked"] == linked  # what it did before stopping, consistent
    assert "lock" not in database.jobs.find_one({"_id": ObjectId(job_id)})
    again = client.post(f"/api/jobs/{job_id}/cancel", headers=lead)
    assert again.status_code == 409
    assert again.get_json()["error"] == "job_finished" and again.get_json()["job_id"] == job_id
    monkeypatch.undo()
    assert job_result(client.post(f"{SYNC}?wait=30", headers=lead))["files_linked"] == len(file_ids) - linked


def test_cancel_a_queued_job_at_once(make_app):
    application = make_app()
    database, lead, _ids = small_world(application)
    segmenter = make_user(application, "sam", "segmenter")
    client = application.test_client()
    job_id = client.post(SYNC, headers=lead).get_json()["job_id"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=segmenter).status_code == 403
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 401
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=lead)
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    assert "lock" not in database.jobs.find_one({"_id": ObjectId(job_id)})
    assert client.post(SYNC, headers=lead).status_code == 202  # the lock is free
    assert_error(client.post(f"/api/jobs/{ObjectId()}/cancel", headers=lead), 404, "not_found")


# ---------------------------------------------------------------- resume


class Killed(BaseException):
    """Ends the runner in the middle of a job without any of its clean-up code for exceptions."""


def test_a_job_cut_off_mid_chunk_is_resumed_from_its_checkpoint(make_app, monkeypatch):
    """The runner dies right after a chunk's write, before its checkpoint. Once the lease runs
    out another runner resumes after the last checkpoint: every file linked exactly once."""
    application = make_app(SYNC_CHUNK_SIZE=20, JOB_LEASE_SECONDS=1)
    database, lead, file_ids = small_world(application, batches=100)
    client = application.test_client()
    job_id = ObjectId(client.post(SYNC, headers=lead).get_json()["job_id"])
    real = file_sync.write_links
    writes = []

    def dies_after_third_write(links, now, *args, **options):
        held = real(links, now, *args, **options)
        writes.append(sum(len(ids) for ids in links.values()))
        if len(writes) == 3:
            raise Killed()
        return held

    monkeypatch.setattr(file_sync, "write_links", dies_after_third_write)
    with pytest.raises(Killed):
        jobrunner.Runner(application).drain()
    monkeypatch.undo()
    cut_off = database.jobs.find_one({"_id": job_id})
    assert cut_off["state"] == "running" and cut_off["progress"]["done"] == 40  # two chunks checkpointed
    assert database.mask_records.count_documents({}) == 60

    assert jobrunner.Runner(application).drain() == 0  # the lease has not run out yet
    wait_for(lambda: time.time() > cut_off["lease_until"].timestamp() + 0.1)
    assert jobrunner.Runner(application).drain() == 1
    done = database.jobs.find_one({"_id": job_id})
    assert done["state"] == "done" and done["attempts"] == 2
    assert database.mask_records.count_documents({}) == len(file_ids)
    assert_records_consistent(database)
    for doc in database.batches.find():
        assert doc["mask_count"] == 1
    # The resumed run went on after the checkpoint: it never rescanned the first 40 files.
    assert done["result"]["files_scanned"] == len(file_ids) - 20  # the cut-off chunk's 20 were linked


def test_a_stopping_runner_hands_its_job_back(make_app, monkeypatch):
    application = make_app(SYNC_CHUNK_SIZE=10)
    database, lead, file_ids = small_world(application, batches=50)
    job_id = ObjectId(application.test_client().post(SYNC, headers=lead).get_json()["job_id"])
    first = jobrunner.Runner(application)
    real = file_sync.write_links

    def stop_on_second_write(links, now, *args, **options):
        if real_calls.append(1) or len(real_calls) == 2:
            first.stop()  # SIGTERM arrives
        return real(links, now, *args, **options)

    real_calls = []
    monkeypatch.setattr(file_sync, "write_links", stop_on_second_write)
    assert first.drain() == 1
    handed = database.jobs.find_one({"_id": job_id})
    assert handed["state"] == "queued" and handed["lock"] == "sync" and "owner" not in handed
    assert handed["progress"]["done"] == 20
    assert jobrunner.Runner(application).drain() == 1
    done = database.jobs.find_one({"_id": job_id})
    assert done["state"] == "done" and done["attempts"] == 2
    assert done["result"]["files_linked"] == len(file_ids)


# ---------------------------------------------------------------- the list, the check job


def test_jobs_list_newest_first_with_filters(make_app, runners):
    application = make_app()
    _database, lead, _ids = small_world(application)
    client = application.test_client()
    runners(application)
    made = [job_result(client.post(f"{path}?wait=30", headers=lead))["job_id"] for path in (SYNC, CHECK, SYNC)]
    items = client.get("/api/jobs", headers=lead).get_json()["items"]
    assert [item["id"] for item in items] == made[::-1]
    syncs = client.get("/api/jobs?kind=sync&state=done&limit=1", headers=lead).get_json()["items"]
    assert [item["id"] for item in syncs] == [made[2]]
    assert client.get("/api/jobs?state=running", headers=lead).get_json()["items"] == []
    assert_error(client.get("/api/jobs?state=paused", headers=lead), 400, "invalid_parameter")
    assert_error(client.get("/api/jobs?limit=101", headers=lead), 400, "out_of_range")


def test_check_job_reports_orphan_chunks(make_app, runners):
    application = make_app()
    database, lead, _ids = small_world(application)
    orphan = ObjectId.from_datetime(utcnow() - timedelta(hours=2))  # an upload cut off long ago
    running = ObjectId()  # an upload that may still be writing: spared
    database["masks.chunks"].insert_many([{"files_id": orphan, "n": 0, "data": b"left behind"},
                                          {"files_id": running, "n": 0, "data": b"being written"}])
    runners(application)
    report = job_result(application.test_client().post(f"{CHECK}?wait=30&limit=5", headers=lead))
    assert report["files_total"] == 2 and report["orphan_chunk_files"] == 1
    assert report["orphan_chunk_examples"] == [str(orphan)]


def test_the_default_lease_is_far_shorter_than_a_step_deadline(monkeypatch):
    from config import load_settings

    for name in ("JOB_LEASE_SECONDS", "JOB_TIMEOUT_SECONDS", "JOB_POLL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings["JOB_LEASE_SECONDS"] * 5 <= settings["JOB_TIMEOUT_SECONDS"]
    assert settings["JOB_POLL_SECONDS"] <= 1


def test_a_failed_jobs_error_reads_in_the_language_of_the_request(make_app, runners, monkeypatch):
    """The job stores a code; the Jobs page's JSON says it in the reader's language, `error` stays English."""
    application = make_app()
    _database, lead, _ids = small_world(application)
    runners(application)
    broken_scan(monkeypatch)
    client = application.test_client()
    spanish, english = {**lead, "Accept-Language": "es-ES,es"}, {**lead, "Accept-Language": "en-US,en"}

    ended = client.post(f"{SYNC}?wait=30", headers=spanish).get_json()
    assert ended["state"] == "failed"
    assert ended["error_message"] == "un error inesperado (RuntimeError)"

    (listed,) = client.get("/api/jobs?state=failed", headers=spanish).get_json()["items"]
    assert listed["error_code"] == "unexpected"
    assert listed["error_message"] == "un error inesperado (RuntimeError)"
    assert listed["error"] == "an unexpected error (RuntimeError)"
    (listed,) = client.get("/api/jobs?state=failed", headers=english).get_json()["items"]
    assert listed["error_message"] == listed["error"] == "an unexpected error (RuntimeError)"


def test_an_import_whose_process_died_is_recorded_failed(make_app):
    application = make_app(JOB_LEASE_SECONDS=1)
    database = database_of(application)
    with application.app_context():
        job = jobs.start_here("import", "cli", total=10, unit="batches")
    database.jobs.update_one({"_id": job["_id"]}, {"$set": {"lease_until": job["lease_until"] - timedelta(seconds=5)}})
    assert jobrunner.Runner(application).drain() == 0
    dead = database.jobs.find_one({"_id": job["_id"]})
    assert dead["state"] == "failed" and dead["error"] == "the process running it stopped"
    assert dead["error_code"] == "runner_stopped" and dead["error_params"] == {}
