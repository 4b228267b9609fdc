"""Sync, auto-create, check and metrics against a real database server (SPEC §3-5, §11)."""
import io
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

import file_sync
import jobrunner
import mask_records
from checks import job_result
from factories import (
    assert_records_consistent,
    insert_batches,
    insert_mask_files,
    link_files,
    linked_file_ids,
    records_of,
)
from helpers import fresh_metrics

# Sync, auto-create and the full check are background jobs: a job runner runs them here.
pytestmark = pytest.mark.usefixtures("runner")

SYNC = "/api/sync-batch-files"
AUTO = "/api/auto-create-batches"
CHECK = "/api/check-mongo-files"

# Files whose path names batch 7 in the layouts SPEC §4 promises to understand.
BATCH_7_LAYOUTS = [
    "batch_0007/x.png",
    "Batch-7/x.png",
    "b0007_img3.png",
    "export\\batch_0007\\x.png",
    "BATCH.0007/img_0012.png",
]
UNMATCHED = ["random.png", "sub7.png", "mybatch7.png", "masks/img_0003.png"]


def sync(client, headers):
    """Start a sync and wait for its result (the runner fixture runs it)."""
    return job_result(client.post(f"{SYNC}?wait=30", headers=headers))


def auto_create(client, headers, query="", **kwargs):
    return job_result(client.post(f"{AUTO}?wait=30{query}", headers=headers, **kwargs))


def batch(database, batch_id):
    return database.batches.find_one({"id": batch_id})


def file_meta(database, file_id):
    return database["masks.files"].find_one({"_id": file_id})["metadata"]


def snapshot(database):
    """Everything sync may touch, to prove a run changed nothing."""
    batches = {d["id"]: (d.get("mask_count"), d.get("updated_at")) for d in database.batches.find()}
    files = {d["_id"]: d.get("metadata") for d in database["masks.files"].find()}
    records = sorted((d["file_id"], d["batch_id"], d["version"], d["current"], d["created_at"])
                     for d in database.mask_records.find())
    return batches, files, records


def assert_batches_consistent(database):
    assert_records_consistent(database)


def is_linked(database, file_id):
    return database.mask_records.find_one({"file_id": file_id}) is not None


# ---------------------------------------------------------------- sync: linking


def test_sync_links_files_by_filename_rule_and_metadata(client, database, lead):
    insert_batches(database, [7, 8, 9])
    seven = insert_mask_files(database, BATCH_7_LAYOUTS)
    by_meta = insert_mask_files(database, ["plain.png"], metadata={"batch_id": "batch_0008"})
    # metadata wins over the path, and a non-canonical metadata id is normalised.
    meta_beats_path = insert_mask_files(database, ["batch_0007/y.png"], metadata={"batch_id": "B-9"})
    unmatched = insert_mask_files(database, UNMATCHED)
    missing = insert_mask_files(database, ["batch_0999/x.png", "b1234.png"])

    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    result = sync(client, lead)

    assert set(result) >= {"job_id", "files_scanned", "files_linked", "batches_updated", "unmatched",
                           "duration_ms"}
    assert ObjectId.is_valid(result["job_id"])
    assert result["files_scanned"] == 5 + 1 + 1 + 4 + 2
    assert result["files_linked"] == 7
    assert result["batches_updated"] == 3
    assert result["unmatched"] == 4
    assert isinstance(result["duration_ms"], int) and 0 <= result["duration_ms"] < 60_000

    b7, b8, b9 = (batch(database, b) for b in ("batch_0007", "batch_0008", "batch_0009"))
    # Five layouts, three distinct names (x.png three times): versions of x.png, the latest current.
    assert linked_file_ids(database, "batch_0007") == sorted(seven) and b7["mask_count"] == 3
    assert sorted(records_of(database, "batch_0007")) == ["b0007_img3.png", "img_0012.png", "x.png"]
    assert linked_file_ids(database, "batch_0008") == by_meta and b8["mask_count"] == 1
    assert linked_file_ids(database, "batch_0009") == meta_beats_path and b9["mask_count"] == 1
    for file_id, expected in ([(f, "batch_0007") for f in seven] + [(by_meta[0], "batch_0008")]
                              + [(meta_beats_path[0], "batch_0009")]):
        record = database.mask_records.find_one({"file_id": file_id})
        assert record["batch_id"] == expected
        assert record["created_at"] >= before
        assert record["uploaded_by"] == "seed" and len(record["sha256"]) == 64
        assert "linked_at" not in file_meta(database, file_id)  # files are not written to link them
    for file_id in unmatched + missing:
        assert not is_linked(database, file_id)
        assert "batch_id" not in file_meta(database, file_id)
    assert database.batches.count_documents({}) == 3  # sync never creates batches
    assert_batches_consistent(database)


def test_sync_with_nothing_to_do(client, database, lead):
    result = sync(client, lead)
    assert (result["files_scanned"], result["files_linked"], result["batches_updated"], result["unmatched"]) \
        == (0, 0, 0, 0)
    job = database.jobs.find_one({"_id": ObjectId(result["job_id"])})
    assert job["state"] == "done"


def test_sync_is_idempotent(client, database, lead):
    insert_batches(database, [1, 2])
    insert_mask_files(database, ["batch_0001/a.png", "batch_0001/b.png", "b2_c.png"])
    insert_mask_files(database, ["nothing.png", "batch_0077/x.png"])

    first = sync(client, lead)
    assert (first["files_scanned"], first["files_linked"], first["batches_updated"]) == (5, 3, 2)
    before = snapshot(database)

    second = sync(client, lead)
    assert second["job_id"] != first["job_id"]
    assert second["files_scanned"] == 2  # only the two that stay unlinked
    assert second["files_linked"] == 0
    assert second["batches_updated"] == 0
    assert second["unmatched"] == 1
    assert snapshot(database) == before
    assert_batches_consistent(database)


def test_sync_is_incremental(client, database, lead):
    insert_batches(database, [1, 2, 3])
    old = insert_mask_files(database, ["batch_0001/a.png", "batch_0002/b.png"])
    leftover = insert_mask_files(database, ["nomatch.png"])
    assert sync(client, lead)["files_linked"] == 2
    old_records = sorted(database.mask_records.find({}, {"_id": 0}), key=lambda d: d["file_id"])

    new = insert_mask_files(database, ["batch_0001/c.png", "Batch-3/d.png", "b0003_e.png"])
    time.sleep(0.01)
    result = sync(client, lead)
    assert result["files_scanned"] == len(new) + len(leftover)  # linked files are not rescanned
    assert result["files_linked"] == 3
    assert result["batches_updated"] == 2
    assert result["unmatched"] == 1

    assert linked_file_ids(database, "batch_0001") == sorted([old[0], new[0]])
    assert batch(database, "batch_0001")["mask_count"] == 2
    assert linked_file_ids(database, "batch_0002") == [old[1]]
    assert linked_file_ids(database, "batch_0003") == sorted(new[1:])
    assert batch(database, "batch_0003")["mask_count"] == 2
    # The records of the first run were not written again.
    assert sorted(database.mask_records.find({"file_id": {"$in": old}}, {"_id": 0}),
                  key=lambda d: d["file_id"]) == old_records
    assert_batches_consistent(database)


def test_sync_completes_a_run_cut_off_after_some_records(client, database, lead):
    """A run cut off after linking some files leaves the others without a record; the next run links
    those, and only those."""
    insert_batches(database, [5])
    already, fresh = insert_mask_files(database, ["batch_0005/a.png", "batch_0005/b.png"])
    link_files(database, "batch_0005", [already])

    result = sync(client, lead)
    assert result["files_linked"] == 1
    assert result["batches_updated"] == 1
    assert linked_file_ids(database, "batch_0005") == sorted([already, fresh])
    assert batch(database, "batch_0005")["mask_count"] == 2
    assert_batches_consistent(database)


def test_sync_keeps_masks_uploaded_directly_to_a_batch(client, database, lead):
    insert_batches(database, [6])
    (uploaded,) = insert_mask_files(database, ["upload.png"])
    link_files(database, "batch_0006", [uploaded])
    (named,) = insert_mask_files(database, ["b6/one.png"])
    result = sync(client, lead)
    assert (result["files_scanned"], result["files_linked"]) == (1, 1)
    assert linked_file_ids(database, "batch_0006") == sorted([uploaded, named])
    assert batch(database, "batch_0006")["mask_count"] == 2


def test_sync_of_a_name_the_batch_has_adds_a_version(client, database, lead):
    insert_batches(database, [3])
    (first,) = insert_mask_files(database, ["upload/img_1.png"])
    link_files(database, "batch_0003", [first])
    (newer,) = insert_mask_files(database, ["batch_0003/IMG_1.png"])
    assert sync(client, lead)["files_linked"] == 1
    assert records_of(database, "batch_0003") == {"img_1.png": [(1, False, first), (2, True, newer)]}
    assert batch(database, "batch_0003")["mask_count"] == 1
    assert_batches_consistent(database)


def test_two_synced_files_of_one_name_the_later_is_current(client, database, lead):
    insert_batches(database, [2])
    late, early = insert_mask_files(database, ["batch_0002/a/img.png", "batch_0002/b/IMG.png"])
    database["masks.files"].update_one({"_id": early},
                                       {"$set": {"uploadDate": datetime(2026, 1, 1, tzinfo=timezone.utc)}})
    assert sync(client, lead)["files_linked"] == 2
    assert records_of(database, "batch_0002") == {"img.png": [(1, False, early), (2, True, late)]}
    assert batch(database, "batch_0002")["mask_count"] == 1
    detail = client.get("/api/batches/batch_0002", headers=lead).get_json()
    (mask,) = detail["masks"]
    assert (mask["id"], mask["version"], mask["version_count"]) == (str(late), 2, 2)
    assert [v["id"] for v in mask["older_versions"]] == [str(early)]
    assert_batches_consistent(database)


def test_sync_never_links_into_reviewed_batches(client, database, lead):
    insert_batches(database, [1])
    insert_batches(database, [2], status="reviewed", assignee="sam")
    (open_file,) = insert_mask_files(database, ["batch_0001/a.png"])
    closed_files = insert_mask_files(database, ["batch_0002/a.png", "b2_late.png"])
    before = batch(database, "batch_0002")

    result = sync(client, lead)
    assert result["files_linked"] == 1 and result["batches_updated"] == 1
    assert result["closed"] == 2
    assert sorted(result["closed_examples"]) == ["b2_late.png", "batch_0002/a.png"]
    assert result["closed_batch_examples"] == ["batch_0002"]
    assert is_linked(database, open_file)
    assert not any(is_linked(database, f) for f in closed_files)
    assert batch(database, "batch_0002") == before

    report = client.get(CHECK, headers=lead).get_json()
    assert report["closed"] == 2 and report["closed_batches"] == ["batch_0002"]
    assert sorted(report["closed_examples"]) == ["b2_late.png", "batch_0002/a.png"]
    assert report["missing_batches"] == [] and report["unlinked"] == 2

    again = sync(client, lead)  # still waiting, still reported
    assert (again["files_scanned"], again["files_linked"], again["closed"]) == (2, 0, 2)
    # Once the batch is open again, the waiting files are linked.
    database.batches.update_one({"id": "batch_0002"}, {"$set": {"status": "in_progress"}})
    reopened = sync(client, lead)
    assert (reopened["files_linked"], reopened["closed"]) == (2, 0)
    assert batch(database, "batch_0002")["mask_count"] == 2
    assert_batches_consistent(database)


def test_sync_reads_only_files_after_its_watermark(client, database, lead, commands):
    insert_batches(database, [1])
    ids = insert_mask_files(database, [f"batch_0001/m{i}.png" for i in range(30)])
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    database["masks.files"].update_many({"_id": {"$in": ids}}, {"$set": {"uploadDate": an_hour_ago}})
    assert sync(client, lead)["files_linked"] == 30
    commands.clear()
    idle = sync(client, lead)
    assert (idle["files_scanned"], idle["files_linked"]) == (0, 0)
    sent = commands.snapshot()
    finds = [c["command"] for c in sent if c["name"] == "find" and c["collection"] == "masks.files"]
    assert len(finds) == 1 and "$gte" in finds[0]["filter"]["uploadDate"]
    # Nothing uploaded since: the one files read found none, so no record is read or written.
    assert not [c for c in sent if c["collection"] == "mask_records"]
    data = ("masks.files", "mask_records", "batches", "sync_waiting")
    returned = [c for c in sent if c["name"] == "find" and c["collection"] in data
                and (c["reply"] or {}).get("cursor", {}).get("firstBatch")]
    assert returned == []  # no file, record or batch read (only the job's own bookkeeping)

    # A file uploaded since is the only one read.
    (new,) = insert_mask_files(database, ["batch_0001/new.png"])
    commands.clear()
    assert sync(client, lead)["files_scanned"] == 1
    assert is_linked(database, new)


def test_sync_scans_by_upload_date_index_ranges(app, database):
    """Files and records are read by index ranges (SecantusDB scans the whole collection for `_id`)."""
    insert_mask_files(database, ["batch_0001/a.png"])
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    plans = [database["masks.files"].find({"uploadDate": {"$gte": since}}).sort([("uploadDate", 1), ("_id", 1)])
             .explain()["queryPlanner"]["winningPlan"],
             database.mask_records.find({"uploaded_at": {"$gte": since}}, {"file_id": 1})
             .explain()["queryPlanner"]["winningPlan"]]
    for plan in plans:
        assert "COLLSCAN" not in str(plan), plan


def test_scan_unlinked_chunk_walks_every_file_once_in_upload_order(app, database):
    """Chunks by (uploadDate, _id): files sharing an upload instant are neither skipped nor repeated."""
    insert_batches(database, [1])
    ids = insert_mask_files(database, [f"batch_0001/m{i}.png" for i in range(25)])
    same = datetime(2026, 11, 5, tzinfo=timezone.utc)
    database["masks.files"].update_many({"_id": {"$in": ids[:12]}}, {"$set": {"uploadDate": same}})
    link_files(database, "batch_0001", ids[20:23])
    seen, after = [], None
    with app.app_context():
        for _ in range(20):
            chunk = file_sync.scan_unlinked_chunk(after, limit=5)
            seen += [doc["_id"] for doc in chunk.docs]
            after = chunk.last_key
            if chunk.exhausted:
                break
    assert sorted(seen) == sorted(ids[:20] + ids[23:])
    assert len(seen) == len(set(seen))


def test_windowed_scan_walks_every_file_once_and_reads_bounded_ranges(app, database, commands):
    """Windows of upload dates (sized from the files the last one held): every file once, in order,
    each read bounded above until the windows pass the scan's start."""
    insert_batches(database, [1])
    ids = insert_mask_files(database, [f"batch_0001/w{i}.png" for i in range(60)])
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for i, file_id in enumerate(ids):  # uneven: a crowd at one instant, then spread over days
        when = base if i < 15 else base + timedelta(hours=i * i)
        database["masks.files"].update_one({"_id": file_id}, {"$set": {"uploadDate": when}})
    link_files(database, "batch_0001", ids[30:33])
    seen, read, position = [], 0, {"phase": "files", "after": [base, None]}
    commands.clear()
    with app.app_context():
        for _ in range(200):
            docs, _waiting, chunk_read, position = file_sync.next_chunk(base, position, 7, total=60)
            seen += [doc["_id"] for doc in docs]
            read += chunk_read
            if position["phase"] == "done":
                break
    assert position["phase"] == "done"
    assert seen == ids[:30] + ids[33:] and read == 60
    files_reads = [c for c in commands.snapshot() if c["name"] == "find" and c["collection"] == "masks.files"]
    assert any("$lte" in c["command"]["filter"]["uploadDate"] for c in files_reads
               if isinstance(c["command"]["filter"].get("uploadDate"), dict))


def test_sync_finds_a_file_uploaded_earlier_than_its_watermark(client, database, lead):
    """Within the overlap window: a file whose upload date is before the last one processed (another
    host's clock) is still found."""
    insert_batches(database, [1])
    insert_mask_files(database, ["batch_0001/first.png"])
    assert sync(client, lead)["files_linked"] == 1
    (late,) = insert_mask_files(database, ["batch_0001/slow.png"])
    database["masks.files"].update_one(
        {"_id": late}, {"$set": {"uploadDate": datetime.now(timezone.utc) - timedelta(seconds=120)}})
    assert sync(client, lead)["files_linked"] == 1
    assert is_linked(database, late)


def test_sync_job_record_and_jobs_api(client, database, lead):
    insert_batches(database, [1])
    insert_mask_files(database, ["batch_0001/a.png", "zzz.png"])
    result = sync(client, lead)

    job = database.jobs.find_one({"_id": ObjectId(result["job_id"])})
    assert job["kind"] == "sync"
    assert job["state"] == "done"
    assert job["started_by"] == "lead1"
    assert "lock" not in job  # the lease is released
    assert job["finished_at"] is not None and job["finished_at"] >= job["started_at"]
    for key in ("files_scanned", "files_linked", "batches_updated", "unmatched", "duration_ms", "job_id"):
        assert job["result"][key] == result[key]
    assert job["progress"] == {"done": 2, "total": 2, "unit": "files"}

    response = client.get(f"/api/jobs/{result['job_id']}", headers=lead)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == result["job_id"]
    assert body["kind"] == "sync" and body["state"] == "done"
    assert body["result"]["files_linked"] == 1
    assert body["started_by"] == "lead1"
    assert body["started_at"].endswith("Z") and body["finished_at"].endswith("Z")


@pytest.mark.parametrize("job_id", ["nope", "0" * 24, str(ObjectId()), "x" * 300, "$where"])
def test_unknown_job_is_a_json_404(client, lead, job_id):
    response = client.get(f"/api/jobs/{job_id}", headers=lead)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"


# ---------------------------------------------------------------- sync: one at a time


def running_sync_job(database, lease_until, started_by="someone"):
    job_id = ObjectId()
    database.jobs.insert_one({"_id": job_id, "kind": "sync", "state": "running", "lock": "sync",
                              "progress": {"done": 0, "total": None}, "result": None, "error": None,
                              "started_by": started_by, "started_at": datetime.now(timezone.utc),
                              "finished_at": None, "lease_until": lease_until})
    return job_id


def test_sync_refused_while_another_holds_the_lease(client, database, lead):
    insert_batches(database, [1])
    (file_id,) = insert_mask_files(database, ["batch_0001/a.png"])
    running = running_sync_job(database, datetime.now(timezone.utc) + timedelta(minutes=5))

    response = client.post(SYNC, headers=lead)
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "job_running"
    assert body["job_id"] == str(running)
    assert body["message"]
    # Nothing happened: the file is unlinked, the running job untouched, no second job.
    assert not is_linked(database, file_id)
    assert batch(database, "batch_0001")["mask_count"] == 0
    assert database.jobs.count_documents({}) == 1
    job = database.jobs.find_one({"_id": running})
    assert job["state"] == "running" and job["lock"] == "sync"

    # Other kinds of job are not blocked by a running sync.
    assert auto_create(client, lead)["created"] == 0


def test_a_sync_whose_runner_died_is_resumed_by_a_runner(client, database, lead):
    """A running sync whose lease ran out (its runner died) is claimed by the next runner and
    completed, without any request; until then it keeps the lock (409 for a new sync)."""
    insert_batches(database, [1])
    (file_id,) = insert_mask_files(database, ["batch_0001/a.png"])
    stale = running_sync_job(database, datetime.now(timezone.utc) - timedelta(seconds=5))

    deadline = time.monotonic() + 30
    while database.jobs.find_one({"_id": stale})["state"] != "done":
        assert time.monotonic() < deadline, "the stale job was not resumed"
        time.sleep(0.05)
    old = database.jobs.find_one({"_id": stale})
    assert "lock" not in old and old["attempts"] == 1 and old["finished_at"] is not None
    assert old["result"]["files_linked"] == 1
    assert database.mask_records.find_one({"file_id": file_id})["batch_id"] == "batch_0001"
    # And the next sync runs normally.
    assert sync(client, lead)["files_linked"] == 0


def test_a_sync_step_past_its_deadline_fails_the_job_and_a_rerun_completes(
        mongo_uri, db_name, database, lead, runner):
    from helpers import build_app

    runner.stop()  # this test runs its jobs with runners of its own settings
    insert_batches(database, range(1, 201))
    insert_mask_files(database, [f"batch_{n:04d}/m{k}.png" for n in range(1, 201) for k in range(5)])
    hurried = build_app(mongo_uri, db_name, JOB_TIMEOUT_SECONDS=0.001, JOB_RETRY_SECONDS=1)
    response = hurried.test_client().post(SYNC, headers=lead)
    assert response.status_code == 202
    job_id = ObjectId(response.get_json()["job_id"])
    assert jobrunner.Runner(hurried).drain() == 1
    job = database.jobs.find_one({"_id": job_id})
    assert job["state"] == "failed" and "lock" not in job
    assert job["error"] and "pymongo" not in job["error"]
    # Whatever part of the work landed, a run with time enough completes it.
    patient = build_app(mongo_uri, db_name)
    assert patient.test_client().post(SYNC, headers=lead).status_code == 202
    assert jobrunner.Runner(patient).drain() == 1
    assert database.mask_records.count_documents({}) == database["masks.files"].count_documents({})
    assert_batches_consistent(database)


def test_auto_create_refused_while_another_holds_its_lease(client, database, lead):
    insert_mask_files(database, ["batch_0003/a.png"])
    job_id = ObjectId()
    database.jobs.insert_one({"_id": job_id, "kind": "auto_create", "state": "running", "lock": "auto_create",
                              "started_at": datetime.now(timezone.utc),
                              "lease_until": datetime.now(timezone.utc) + timedelta(minutes=5)})
    response = client.post(f"{AUTO}?wait=30", headers=lead)
    assert response.status_code == 409
    assert response.get_json()["job_id"] == str(job_id)
    assert database.batches.count_documents({}) == 0


def _fire_concurrently(app, headers, path, n=2):
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(index):
        own_client = app.test_client()
        barrier.wait()
        try:
            response = own_client.post(path, headers=headers)
            results[index] = (response.status_code, response.get_json())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = (None, repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _concurrency_data(database):
    numbers = list(range(1, 41))
    insert_batches(database, numbers)
    names = [f"batch_{n:04d}/img_{k}.png" for n in numbers for k in range(3)]
    return insert_mask_files(database, names)


def test_concurrent_syncs_one_runs_the_other_gets_409(app, database, lead, monkeypatch):
    """Two workers (threads, each with its own client) start a sync together: one is accepted, the
    other refused with the first one's id, and the accepted job links every file once."""
    file_ids = _concurrency_data(database)
    real_next_chunk = file_sync.next_chunk

    def slow_next_chunk(*args, **kwargs):
        time.sleep(0.3)  # keep the job running while both requests arrive
        return real_next_chunk(*args, **kwargs)

    monkeypatch.setattr(file_sync, "next_chunk", slow_next_chunk)
    results = _fire_concurrently(app, lead, SYNC)

    statuses = sorted(status for status, _ in results)
    assert statuses == [202, 409], results
    accepted = next(body for status, body in results if status == 202)
    refused = next(body for status, body in results if status == 409)
    assert refused["error"] == "job_running"
    assert refused["job_id"] == accepted["job_id"]
    done = app.test_client().get(f"/api/jobs/{accepted['job_id']}", headers=lead).get_json()
    deadline = time.monotonic() + 30
    while done["state"] != "done":
        assert time.monotonic() < deadline, done
        time.sleep(0.1)
        done = app.test_client().get(f"/api/jobs/{accepted['job_id']}", headers=lead).get_json()
    assert done["result"]["files_linked"] == len(file_ids)
    assert database.jobs.count_documents({"kind": "sync"}) == 1
    assert database.mask_records.count_documents({}) == database["masks.files"].count_documents({})
    assert_batches_consistent(database)
    assert sum(d["mask_count"] for d in database.batches.find()) == len(file_ids)


def test_concurrent_syncs_never_fail_or_link_twice(app, database, lead):
    """Without any slowing down: whatever the interleaving, never a 500 and never a double link."""
    file_ids = _concurrency_data(database)
    results = _fire_concurrently(app, lead, f"{SYNC}?wait=30")
    statuses = [status for status, _ in results]
    assert all(status in (200, 409) for status in statuses), results
    assert statuses.count(200) >= 1 and statuses.count(409) <= 1
    assert sum(body["result"]["files_linked"] for status, body in results if status == 200) == len(file_ids)
    for status, body in results:
        if status == 409:
            assert body["error"] == "job_running"
    assert database.mask_records.count_documents({}) == database["masks.files"].count_documents({})
    assert_batches_consistent(database)
    assert database.jobs.count_documents({"lock": {"$exists": True}}) == 0


# ---------------------------------------------------------------- auto-create


def test_auto_create_creates_missing_batches_then_sync_links(client, database, lead):
    insert_batches(database, [1])
    named = insert_mask_files(database, ["batch_0101/a.png", "batch_0101/b.png", "B-102/x.png",
                                         "b0103_img4.png", "export\\batch_0001\\y.png"])
    (meta_named,) = insert_mask_files(database, ["plain.png"], metadata={"batch_id": "104"})
    insert_mask_files(database, ["nothing_here.png"])

    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    result = auto_create(client, lead)
    assert ObjectId.is_valid(result["job_id"])
    assert result["created"] == 4
    assert result["skipped_existing"] == 1
    assert result["limited"] is False

    assert sorted(d["id"] for d in database.batches.find()) == [
        "batch_0001", "batch_0101", "batch_0102", "batch_0103", "batch_0104"]
    for batch_id in ("batch_0101", "batch_0102", "batch_0103", "batch_0104"):
        doc = batch(database, batch_id)
        assert doc["status"] == "pending"
        assert doc["assignee"] is None
        assert doc["metadata"]["source"] == "auto-create"
        assert doc["metadata"]["created_at"] >= before
        assert doc["mask_count"] == 0 and "mask_files" not in doc
        assert doc["name"]
    # auto-create links nothing by itself
    assert database.mask_records.count_documents({}) == 0
    job = database.jobs.find_one({"_id": ObjectId(result["job_id"])})
    assert job["kind"] == "auto_create" and job["state"] == "done" and "lock" not in job
    assert job["result"]["created"] == 4

    # The new batches are visible at once through the API.
    listing = client.get("/api/batches?q=batch_01", headers=lead).get_json()
    assert [item["id"] for item in listing["items"]] == ["batch_0101", "batch_0102", "batch_0103", "batch_0104"]
    assert listing["total"] == 4

    linked = sync(client, lead)
    assert linked["files_linked"] == 6
    assert linked["batches_updated"] == 5
    assert batch(database, "batch_0101")["mask_count"] == 2
    assert linked_file_ids(database, "batch_0101") == sorted(named[:2])
    assert linked_file_ids(database, "batch_0104") == [meta_named]
    assert_batches_consistent(database)


def test_auto_create_is_idempotent(client, database, lead):
    insert_batches(database, [1])
    insert_mask_files(database, ["batch_0001/a.png", "batch_0002/a.png", "b3.png"])
    first = auto_create(client, lead)
    assert (first["created"], first["skipped_existing"], first["limited"]) == (2, 1, False)
    before = list(database.batches.find({}, sort=[("id", 1)]))

    second = auto_create(client, lead)
    assert second["created"] == 0
    assert second["skipped_existing"] == 3
    assert second["limited"] is False
    assert list(database.batches.find({}, sort=[("id", 1)])) == before


def test_auto_create_when_another_writer_creates_one_meanwhile(client, database, lead, monkeypatch):
    """A batch created (by an import, another host …) between auto-create's read and its insert is
    refused by the unique id index; the others are still created and nothing fails."""
    insert_mask_files(database, ["batch_0201/a.png", "batch_0202/a.png", "batch_0203/a.png"])
    real_existing = file_sync.existing_batch_ids

    def existing_then_concurrent_create(batch_ids):
        found = real_existing(batch_ids)
        insert_batches(database, [202], name="made elsewhere")
        return found

    monkeypatch.setattr(file_sync, "existing_batch_ids", existing_then_concurrent_create)
    result = auto_create(client, lead)
    assert result["created"] == 2
    assert result["skipped_existing"] == 1
    assert result["limited"] is False
    assert sorted(d["id"] for d in database.batches.find()) == ["batch_0201", "batch_0202", "batch_0203"]
    assert batch(database, "batch_0202")["name"] == "made elsewhere"
    assert database.jobs.find_one({"_id": ObjectId(result["job_id"])})["state"] == "done"


def test_auto_create_without_files_creates_nothing(client, database, lead):
    result = auto_create(client, lead)
    assert (result["created"], result["skipped_existing"], result["limited"]) == (0, 0, False)
    assert database.batches.count_documents({}) == 0


@pytest.mark.parametrize("how", ["json", "query"])
def test_auto_create_respects_limit(client, database, lead, how):
    insert_mask_files(database, [f"batch_{n:04d}/m.png" for n in (11, 12, 13, 14, 15)])
    wanted = {f"batch_{n:04d}" for n in (11, 12, 13, 14, 15)}

    def call(limit):
        if how == "json":
            return auto_create(client, lead, json={"limit": limit})
        return auto_create(client, lead, f"&limit={limit}")

    first = call(2)
    assert first["created"] == 2 and first["limited"] is True
    after_first = {d["id"] for d in database.batches.find()}
    assert len(after_first) == 2 and after_first <= wanted

    second = call(2)
    assert second["created"] == 2 and second["limited"] is True
    assert second["skipped_existing"] == 2
    after_second = {d["id"] for d in database.batches.find()}
    assert len(after_second) == 4 and after_first < after_second <= wanted

    third = call(2)
    assert third["created"] == 1 and third["limited"] is False
    assert {d["id"] for d in database.batches.find()} == wanted
    assert call(5)["created"] == 0


def test_auto_create_limit_equal_to_missing_is_not_limited(client, database, lead):
    insert_mask_files(database, ["b21.png", "b22.png"])
    result = auto_create(client, lead, json={"limit": 2})
    assert (result["created"], result["limited"]) == (2, False)


@pytest.mark.parametrize("body", [{"limit": "x"}, {"limit": "2"}, {"limit": 10**9}, {"limit": 1.5}, {"limit": [2]},
                                  {"other": 1}, [1, 2]])
def test_auto_create_rejects_bad_json_limit(client, database, lead, body):
    insert_mask_files(database, ["batch_0031/a.png", "batch_0032/a.png"])
    response = client.post(AUTO, headers=lead, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()
    assert set(error) >= {"error", "message"} and error["error"]
    assert database.batches.count_documents({}) == 0
    assert database.jobs.count_documents({}) == 0


@pytest.mark.parametrize("query", ["-1", "x", str(10**9), "true", "", "1e3", "2.5", "%242"])
def test_auto_create_rejects_bad_query_limit(client, database, lead, query):
    insert_mask_files(database, ["batch_0031/a.png", "batch_0032/a.png"])
    response = client.post(f"{AUTO}?limit={query}", headers=lead)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] in ("invalid_parameter", "out_of_range")
    assert database.batches.count_documents({}) == 0
    assert database.jobs.count_documents({}) == 0


def test_auto_create_rejects_malformed_json(client, database, lead):
    insert_mask_files(database, ["batch_0031/a.png"])
    response = client.post(AUTO, headers={**lead, "Content-Type": "application/json"}, data="{limit: 2")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert database.batches.count_documents({}) == 0


# ---------------------------------------------------------------- check


DUP_SHA = "d" * 64


def _check_data(database, client, lead):
    insert_batches(database, [1, 2, 3, 4])
    insert_mask_files(database, ["batch_0001/a.png", "batch_0001/b.png", "b2_c.png"])
    insert_mask_files(database, ["foo.png", "bar/sub7.png"])
    insert_mask_files(database, ["batch_0050/x.png", "b51.png", "B-50/y.png"])
    dups = insert_mask_files(database, ["dup_one.png", "batch_0003/dup_two.png"], metadata={"sha256": DUP_SHA})
    other_dups = insert_mask_files(database, ["c1.png", "c2.png", "c3.png"], metadata={"sha256": "c" * 64})
    sync(client, lead)  # links a, b, c (batches 1, 2) and dup_two (batch 3)
    return dups, other_dups


def test_check_reports_the_state_of_the_files(client, database, lead):
    dups, other_dups = _check_data(database, client, lead)
    before = snapshot(database)

    response = client.get(CHECK, headers=lead)
    assert response.status_code == 200
    report = response.get_json()
    assert report["files_total"] == 13
    assert report["linked"] == 4
    assert report["unlinked"] == 9
    assert sorted(report["unmatched"]) == sorted(["foo.png", "bar/sub7.png", "dup_one.png", "c1.png", "c2.png",
                                                  "c3.png"])
    assert report["missing_batches"] == ["batch_0050", "batch_0051"]
    assert report["batches_without_masks"] == ["batch_0004"]
    duplicates = sorted(report["duplicates"], key=lambda d: d["sha256"])
    assert [d["sha256"] for d in duplicates] == ["c" * 64, DUP_SHA]
    assert sorted(f["id"] for f in duplicates[0]["files"]) == sorted(str(f) for f in other_dups)
    assert sorted(f["id"] for f in duplicates[1]["files"]) == sorted(str(f) for f in dups)
    assert sorted(f["filename"] for f in duplicates[1]["files"]) == ["batch_0003/dup_two.png", "dup_one.png"]
    assert snapshot(database) == before  # check is read-only


def test_check_caps_lists_at_limit(client, database, lead):
    _check_data(database, client, lead)
    report = client.get(f"{CHECK}?limit=1", headers=lead).get_json()
    assert len(report["unmatched"]) == 1
    assert report["unmatched"][0] in {"foo.png", "bar/sub7.png", "dup_one.png", "c1.png", "c2.png", "c3.png"}
    assert report["missing_batches"] == ["batch_0050"]
    assert report["batches_without_masks"] == ["batch_0004"]
    assert len(report["duplicates"]) == 1
    # Totals are not capped.
    assert (report["files_total"], report["linked"], report["unlinked"]) == (13, 4, 9)


def test_check_lists_many_without_masks_up_to_limit(client, database, lead):
    insert_batches(database, range(1, 31))
    # A batch imported without the mask fields has no masks either.
    database.batches.update_one({"id": "batch_0001"}, {"$unset": {"mask_count": ""}})
    report = client.get(f"{CHECK}?limit=5", headers=lead).get_json()
    assert report["batches_without_masks"] == [f"batch_{n:04d}" for n in range(1, 6)]
    assert report["files_total"] == 0 and report["duplicates"] == [] and report["missing_batches"] == []
    default = client.get(CHECK, headers=lead).get_json()
    assert len(default["batches_without_masks"]) == 30


def test_check_on_empty_database(client, lead):
    report = client.get(CHECK, headers=lead).get_json()
    assert report["files_total"] == 0 and report["linked"] == 0 and report["unlinked"] == 0
    assert report["unmatched"] == [] and report["missing_batches"] == []
    assert report["batches_without_masks"] == [] and report["duplicates"] == []


@pytest.mark.parametrize("limit", ["-1", "x", "", str(10**9), "1.5", "true"])
def test_check_rejects_bad_limit(client, lead, limit):
    response = client.get(f"{CHECK}?limit={limit}", headers=lead)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_parameter", "out_of_range")


# ---------------------------------------------------------------- metrics


def _utc_day(delta_days, now):
    return (now - timedelta(days=delta_days)).strftime("%Y-%m-%d")


def test_metrics(app, client, database, lead, seg, other_seg):
    now = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    insert_batches(database, [1, 2, 3])  # pending, unassigned
    insert_batches(database, [4, 5], assignee="sam", status="assigned")
    insert_batches(database, [6], assignee="sam", status="in_progress")
    insert_batches(database, [7], assignee="olga", status="completed", mask_count=3)
    database.batches.update_one({"id": "batch_0007"}, {"$set": {"metadata.completed_at": now}})
    insert_batches(database, [8], assignee="olga", status="reviewed", mask_count=2)
    database.batches.update_one({"id": "batch_0008"}, {"$set": {"metadata.completed_at": now - timedelta(days=5)}})
    insert_batches(database, [9], assignee="sam", status="completed", mask_count=1)
    database.batches.update_one({"id": "batch_0009"}, {"$set": {"metadata.completed_at": now - timedelta(days=5)}})
    insert_batches(database, [10], assignee="olga", status="rejected")
    database.batches.update_one({"id": "batch_0010"}, {"$set": {"metadata.completed_at": now - timedelta(days=29)}})
    insert_batches(database, [11], assignee="sam", status="reviewed")
    database.batches.update_one({"id": "batch_0011"}, {"$set": {"metadata.completed_at": now - timedelta(days=31)}})
    insert_mask_files(database, ["batch_0001/a.png", "batch_0002/b.png", "zzz.png"])
    sync(client, lead)  # links 2 of 3 files; batches 1 and 2 get mask_count 1

    metrics = fresh_metrics(client, seg)
    assert metrics["totals"]["batches"] == 11
    assert metrics["totals"]["images"] == 44  # factory batches have 4 images each
    assert metrics["totals"]["masks"] == 3 + 2 + 1 + 1 + 1
    assert metrics["totals"]["files"] == 3
    assert metrics["totals"]["linked_files"] == 2
    assert metrics["totals"]["unlinked_files"] == 1
    assert metrics["by_status"] == {"pending": 3, "assigned": 2, "in_progress": 1, "completed": 2,
                                    "reviewed": 2, "rejected": 1}
    by_assignee = {row["assignee"]: row for row in metrics["by_assignee"]}
    assert [row["assignee"] for row in metrics["by_assignee"]] == ["olga", "sam"]
    assert by_assignee["sam"]["assigned"] == 2
    assert by_assignee["sam"]["in_progress"] == 1
    assert by_assignee["sam"]["completed"] == 1
    assert by_assignee["sam"]["reviewed"] == 1
    assert by_assignee["sam"]["pending"] == 0
    assert by_assignee["sam"]["masks"] == 1
    assert by_assignee["olga"]["completed"] == 1
    assert by_assignee["olga"]["reviewed"] == 1
    assert by_assignee["olga"]["rejected"] == 1
    assert by_assignee["olga"]["masks"] == 5

    per_day = metrics["completed_per_day"]
    assert len(per_day) == 30
    today = datetime.now(timezone.utc)
    assert per_day[-1]["date"] == today.strftime("%Y-%m-%d")
    assert per_day[0]["date"] == _utc_day(29, today)
    assert [d["date"] for d in per_day] == sorted(d["date"] for d in per_day)
    counts = {d["date"]: d["n"] for d in per_day}
    assert counts[_utc_day(0, now)] == 1
    assert counts[_utc_day(5, now)] == 2
    assert counts[_utc_day(29, now)] == 1
    assert sum(counts.values()) == 4  # the completion 31 days ago is outside the window
    assert metrics["progress"]["done"] == 4
    assert metrics["progress"]["total"] == 11
    assert metrics["progress"]["percent"] == pytest.approx(36.4, abs=0.05)

    # Second call: from the cache, no aggregation.
    from helpers import COMMANDS
    COMMANDS.clear()
    again = client.get("/api/metrics", headers=seg).get_json()
    assert again == metrics
    assert [c for c in COMMANDS.snapshot() if c["name"] == "aggregate"] == []

    # A write is counted in the background and visible a moment later.
    response = client.patch("/api/batches/batch_0001", headers=lead, json={"assignee": "olga"})
    assert response.status_code == 200, response.get_data(as_text=True)
    fresh = fresh_metrics(client, seg)
    assert fresh["by_status"]["pending"] == 2
    assert fresh["by_status"]["assigned"] == 3
    olga = next(row for row in fresh["by_assignee"] if row["assignee"] == "olga")
    assert olga["assigned"] == 1 and olga["masks"] == 6
    response = client.patch("/api/batches/batch_0006", headers=seg,
                            json={"status": "completed", "confirm_incomplete": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    fresher = fresh_metrics(client, seg)
    assert fresher["by_status"]["completed"] == 3
    assert fresher["progress"]["done"] == 5
    assert fresher["completed_per_day"][-1]["n"] == metrics["completed_per_day"][-1]["n"] + 1
    sam = next(row for row in fresher["by_assignee"] if row["assignee"] == "sam")
    assert (sam["in_progress"], sam["completed"]) == (0, 2)


def test_metrics_on_empty_database(client, seg):
    metrics = client.get("/api/metrics", headers=seg).get_json()
    assert metrics["totals"]["batches"] == 0
    assert set(metrics["by_status"].values()) == {0}
    assert metrics["by_assignee"] == []
    assert len(metrics["completed_per_day"]) == 30
    assert sum(d["n"] for d in metrics["completed_per_day"]) == 0
    assert metrics["progress"]["done"] == 0 and metrics["progress"]["total"] == 0


def test_metrics_cache_is_coherent_across_workers(app, mongo_uri, db_name, database, lead, seg):
    """A write by another app instance (worker) shows within about a second."""
    import db
    from helpers import build_app

    insert_batches(database, [1, 2])
    other = build_app(mongo_uri, db_name)
    assert app.test_client().get("/api/metrics", headers=seg).get_json()["by_status"]["pending"] == 2
    response = other.test_client().patch("/api/batches/batch_0001", headers=lead, json={"assignee": "sam"})
    assert response.status_code == 200
    deadline = time.monotonic() + 3
    while True:
        pending = app.test_client().get("/api/metrics", headers=seg).get_json()["by_status"]["pending"]
        if pending == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert pending == 1
    with other.app_context():
        assert db.database().name == db_name


def test_sync_counts_as_a_write_for_metrics(client, database, lead, seg):
    insert_batches(database, [1])
    insert_mask_files(database, ["batch_0001/a.png"])
    assert client.get("/api/metrics", headers=seg).get_json()["totals"]["linked_files"] == 0
    sync(client, lead)
    metrics = fresh_metrics(client, seg)
    assert metrics["totals"]["linked_files"] == 1
    assert metrics["totals"]["masks"] == 1



# ---------------------------------------------------------------- races with other writers


def test_sync_racing_an_upload_of_the_same_name(app, client, database, lead, monkeypatch):
    """Between sync's scan and its write, an upload (another worker) adds the same name to the batch.
    Both stay as versions, exactly one is current and the count holds one mask."""
    insert_batches(database, [1])
    (synced,) = insert_mask_files(database, ["batch_0001/img_1.png"])
    real_statuses = file_sync.batch_statuses

    def statuses_then_concurrent_upload(batch_ids, **options):
        found = real_statuses(batch_ids, **options)
        response = app.test_client().post(
            "/api/masks", headers=lead, content_type="multipart/form-data",
            data={"file": (io.BytesIO(b"\x89PNG fresh upload"), "IMG_1.png"), "batch_id": "batch_0001"})
        assert response.status_code == 201
        return found

    monkeypatch.setattr(file_sync, "batch_statuses", statuses_then_concurrent_upload)
    result = sync(client, lead)
    assert result["files_linked"] == 1
    (history,) = records_of(database, "batch_0001").values()
    assert [v for v, _c, _f in history] == [1, 2]
    assert sum(1 for _v, current, _f in history if current) == 1
    assert synced in [f for _v, _c, f in history]
    assert batch(database, "batch_0001")["mask_count"] == 1
    assert_batches_consistent(database)


def test_write_links_never_links_a_file_twice(app, database, commands):
    """Files another writer linked meanwhile are refused by the unique file index, not read back first."""
    insert_batches(database, [1, 2])
    count = 600
    ours = insert_mask_files(database, [f"batch_0001/a{i}.png" for i in range(count)])
    taken = ours[::2]
    link_files(database, "batch_0002", taken)  # linked elsewhere meanwhile
    docs = list(database["masks.files"].find({"_id": {"$in": ours}}))
    commands.clear()
    with app.app_context():
        made = file_sync.write_links({"batch_0001": docs}, datetime.now(timezone.utc))
        sent = [(c["name"], c["collection"]) for c in commands.snapshot()]
        # The count waits for the sync's settling stage, noted as pending meanwhile.
        assert batch(database, "batch_0001")["mask_count"] == 0
        assert mask_records.pending_counts()[1] == ["batch_0001"]
        assert mask_records.settle_pending_counts() == 1
        assert mask_records.pending_counts() == ([], [])
    assert sorted(made["batch_0001"]) == sorted(ours[1::2])
    assert made.already_linked == set(taken)
    assert linked_file_ids(database, "batch_0001") == sorted(ours[1::2])
    assert batch(database, "batch_0001")["mask_count"] == len(ours[1::2])
    assert linked_file_ids(database, "batch_0002") == sorted(taken)
    assert ("find", "masks.files") not in sent
    assert sent.count(("insert", "mask_records")) == 1
    assert_batches_consistent(database)


def test_sync_settles_the_counts_a_killed_sync_left(app, client, database, lead):
    """Killed after inserting records and before settling the counts: the note it left in app_state
    makes the next sync count those batches again."""
    import mask_records

    insert_batches(database, [1, 2])
    ids = insert_mask_files(database, ["batch_0001/a.png", "batch_0001/b.png", "batch_0002/c.png"])
    docs = {d["_id"]: d for d in database["masks.files"].find()}
    with app.app_context():
        mask_records._note_pending(["batch_0001", "batch_0002"])
    database.mask_records.insert_many([mask_records.new_record("batch_0001", docs[ids[0]], 1, True, None),
                                       mask_records.new_record("batch_0001", docs[ids[1]], 1, True, None),
                                       mask_records.new_record("batch_0002", docs[ids[2]], 1, True, None)])
    assert batch(database, "batch_0001")["mask_count"] == 0  # the kill
    result = sync(client, lead)
    assert result["files_linked"] == 0
    assert (batch(database, "batch_0001")["mask_count"], batch(database, "batch_0002")["mask_count"]) == (2, 1)
    assert database.app_state.count_documents({"_id": {"$regex": "^pending_counts:"}}) == 0
    assert_batches_consistent(database)


def test_any_later_write_to_a_batch_repairs_its_count(client, database, lead):
    insert_batches(database, [1])
    (file_id,) = insert_mask_files(database, ["batch_0001/a.png"])
    link_files(database, "batch_0001", [file_id])
    database.batches.update_one({"id": "batch_0001"}, {"$set": {"mask_count": 7}})  # left wrong by a crash
    response = client.post("/api/masks", headers=lead, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"\x89PNG other"), "b.png"), "batch_id": "batch_0001"})
    assert response.status_code == 201
    assert batch(database, "batch_0001")["mask_count"] == 2
    assert_batches_consistent(database)


def test_closed_batch_ids_from_ids_or_statuses(app, database):
    insert_batches(database, [1, 2])
    insert_batches(database, [3], status="reviewed", assignee="sam")
    with app.app_context():
        assert file_sync.closed_batch_ids(["batch_0001", "batch_0003", "batch_0009"]) == {"batch_0003"}
        statuses = file_sync.batch_statuses(["batch_0002", "batch_0003"])
        assert file_sync.closed_batch_ids(statuses) == {"batch_0003"}
        assert file_sync.existing_batch_ids(["batch_0002", "batch_0009"]) == {"batch_0002"}
