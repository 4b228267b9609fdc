"""Faults with real processes on loopback (SPEC §11): a worker killed mid-sync, the database
stopped under load and started again, two instances racing for the sync lease, cut-off uploads.

Each test runs real Gunicorn servers (tests/gunicorn_server.py) against a real database
server; the outage test starts its own database server so it can stop and restart it.
"""
import functools
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid

import pytest
import requests
from bson import ObjectId
from pymongo import MongoClient

import embedded_db
import seed
from bench.servers import free_port
from factories import insert_batches, upload_dates
from gunicorn_server import GunicornServer, drop_database, prepare_database
from helpers import wait_for as poll
from runner_process import RunnerProcess

pytestmark = pytest.mark.system

SYNC = "/api/sync-batch-files"

# These servers run in other processes: poll them gently unless a test asks for more.
wait_for = functools.partial(poll, interval=0.2)


@pytest.fixture
def own_database(mongo_uri):
    """A fresh database name on the session's server, and a handle to it; dropped afterwards."""
    db_name = f"segdash_faults_{uuid.uuid4().hex[:10]}"
    client = MongoClient(mongo_uri, tz_aware=True)
    yield db_name, client[db_name]
    client.close()
    drop_database(mongo_uri, db_name)


@pytest.fixture
def servers():
    """Gunicorn servers started by a test, always stopped afterwards."""
    started = []
    yield started
    for server in started:
        server.close()


def insert_unlinked_files(database, names):
    """masks.files documents only (no chunks: the sync reads none), made by seed.py's generator
    (the one bench/datasets.py uses) and inserted in bulk; returns their ids in order."""
    docs = [seed._mask(name, name.encode(), "seed", date)[0] for name, date in zip(names, upload_dates(len(names)))]
    seed._insert_in_chunks(database["masks.files"], docs)
    return [doc["_id"] for doc in docs]


def links_consistent_now(database, counts=True):
    """What holds at every moment, even while a cut-off write is still being applied: a file is
    linked once (one mask record), each name of a batch has one current version; with `counts`
    (once no write is pending), each batch's mask_count is its number of current records.
    Returns ({file_id: batch_id}, number of linked files)."""
    owner, current, names = {}, {}, set()
    for record in database.mask_records.find({}, {"file_id": 1, "batch_id": 1, "name_key": 1, "current": 1}):
        assert record["file_id"] not in owner, f"{record['file_id']} linked twice"
        owner[record["file_id"]] = record["batch_id"]
        key = (record["batch_id"], record["name_key"])
        names.add(key)
        if record["current"]:
            assert key not in current, f"{key} has two current versions"
            current[key] = True
    if counts:
        assert names == set(current), "a name without a current version"
        per_batch = {}
        for batch_id, _name in current:
            per_batch[batch_id] = per_batch.get(batch_id, 0) + 1
        for batch in database.batches.find({}, {"id": 1, "mask_count": 1}):
            assert (batch.get("mask_count") or 0) == per_batch.get(batch["id"], 0), batch["id"]
    return owner, len(owner)


# ---------------------------------------------------------------- a job runner killed mid-sync

BATCHES = 400             # existing batches, 20 files each
FILES_PER_BATCH = 20
MISSING_BATCHES = 400     # named by 10 files each, absent from `batches`
UNMATCHED = 8_000         # names that match no rule
LEASE = 3


def sync_dataset(database):
    """20,000 unlinked files: 8,000 naming existing batches, 4,000 naming missing ones, 8,000
    matching nothing. Only the first kind costs the sync writes (about 1 ms each on SecantusDB),
    so the sync runs for several seconds."""
    insert_batches(database, range(1, BATCHES + 1))
    matched = [f"batch_{n:04d}/img_{k:04d}.png" for n in range(1, BATCHES + 1) for k in range(FILES_PER_BATCH)]
    missing = [f"Batch-{n}/mask_{k}.png" for n in range(3001, 3001 + MISSING_BATCHES) for k in range(10)]
    unmatched = [f"unsorted/img_{i:06d}.png" for i in range(UNMATCHED)]
    ids = insert_unlinked_files(database, matched + missing + unmatched)
    expected = {}
    for index, file_id in enumerate(ids[:len(matched)]):
        expected[file_id] = f"batch_{index // FILES_PER_BATCH + 1:04d}"
    return expected, len(ids)


def job_id(body):
    """The ObjectId of a job, from a 202 answer (`job_id`) or a job record (`id`)."""
    return ObjectId(body.get("job_id") or body["id"])


def assert_linked_exactly_once(database, expected):
    """Each file naming an existing batch is in that batch once (one mask record); nothing else
    is linked; counts match the current records."""
    owner, linked = links_consistent_now(database)
    assert owner == expected
    assert linked == len(expected)
    assert sum(b["mask_count"] for b in database.batches.find({}, {"mask_count": 1})) == len(expected)


@pytest.fixture
def runners():
    """Job runner processes started by a test, always stopped afterwards."""
    started = []
    yield started
    for runner in started:
        runner.close()


def test_runner_killed_mid_sync_the_job_finishes_by_itself(mongo_uri, own_database, servers, runners):
    """SIGKILL the job runner while a sync over 20,000 files is writing. Nobody clicks anything:
    once the lease runs out, the other runner (another host) resumes the job from its last
    checkpoint and finishes it, every file linked exactly once."""
    db_name, database = own_database
    expected, total_files = sync_dataset(database)
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2, JOB_LEASE_SECONDS=str(LEASE))
    servers.append(server)
    first = RunnerProcess(mongo_uri, db_name, JOB_LEASE_SECONDS=str(LEASE))
    runners.append(first)

    response = server.post(SYNC, headers=lead)
    assert response.status_code == 202, response.text
    job = job_id(response.json())

    def progress():
        return server.get(f"/api/jobs/{job}", headers=lead).json()

    wait_for(lambda: progress()["progress"]["done"] > 0 and database.mask_records.find_one({}, {"_id": 1}),
             timeout=120, interval=0.1,
        what="the sync writing its first chunks")
    first.kill()
    killed_at = time.monotonic()
    at_kill = database.jobs.find_one({"_id": job})
    assert at_kill["state"] == "running", "the sync ended before the kill: give it more files to link"
    _owner, linked_at_kill = links_consistent_now(database, counts=False)  # a write may be pending
    assert 0 < linked_at_kill < len(expected)

    second = RunnerProcess(mongo_uri, db_name, JOB_LEASE_SECONDS=str(LEASE))
    runners.append(second)
    resumed = wait_for(lambda: (doc := database.jobs.find_one({"_id": job}))["attempts"] == 2 and doc,
                       timeout=LEASE + 30, interval=0.05, what="another runner resuming the job")
    resumed_after = time.monotonic() - killed_at
    assert resumed["progress"]["done"] >= at_kill["progress"]["done"]  # from the checkpoint, not from 0
    done = wait_for(lambda: (j := progress())["state"] not in ("queued", "running") and j, timeout=300,
                    what="the resumed job finishing")
    assert done["state"] == "done", done
    assert done["attempts"] == 2
    assert database.jobs.count_documents({"lock": {"$exists": True}}) == 0
    assert_linked_exactly_once(database, expected)
    # Nothing left to do.
    started = server.post(f"{SYNC}?wait=30", headers=lead, timeout=60).json()  # 202 when slower than 30 s
    again = wait_for(lambda: (j := server.get(f"/api/jobs/{started['job_id']}", headers=lead).json())["state"]
                     not in ("queued", "running") and j, timeout=300, what="the second sync")
    assert again["result"]["files_linked"] == 0
    assert again["result"]["files_scanned"] == total_files - len(expected)

    print(f"\nrunner killed mid-sync: {linked_at_kill}/{len(expected)} files linked at the kill "
          f"(checkpoint at {at_kill['progress']['done']} files scanned); resumed by the other runner "
          f"{resumed_after:.1f}s after the kill (lease {LEASE}s); job done with attempts=2")


def test_worker_recycling_while_a_job_runs_does_not_stop_it(mongo_uri, own_database, servers, runners):
    """Gunicorn recycles its workers every few requests while a sync runs: the job lives in the
    runner, not in a worker, and ends done at its first attempt."""
    db_name, database = own_database
    expected, _total = sync_dataset(database)
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2, GUNICORN_MAX_REQUESTS="5",
                            GUNICORN_MAX_REQUESTS_JITTER="0")
    servers.append(server)
    runners.append(RunnerProcess(mongo_uri, db_name))
    first_workers = set(server.workers())
    job = job_id(server.post(SYNC, headers=lead).json())
    seen_workers = set(first_workers)
    while True:
        body = server.get(f"/api/jobs/{job}", headers=lead).json()
        seen_workers.update(server.workers())
        if body["state"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert body["state"] == "done" and body["attempts"] == 1, body
    assert len(seen_workers - first_workers) >= 2, "no worker was recycled while the job ran"
    assert_linked_exactly_once(database, expected)
    print(f"\nworker recycling: {len(seen_workers - first_workers)} new workers while the job ran; done")


# ---------------------------------------------------------------- the database stopped under load


@pytest.fixture
def private_db_server():
    """A database server of this test's own, which it may stop and start again (same port, same data)."""
    with tempfile.TemporaryDirectory(prefix="segdash-faults-db-") as dbpath:
        port = free_port()
        log = os.path.join(dbpath, "server.log")
        state = {"dbpath": os.path.join(dbpath, "data"), "port": port, "log": log}

        def start():
            state["process"], state["uri"], _name = embedded_db.start(state["dbpath"], port, log)
            return state["uri"]

        def stop():
            embedded_db.stop(state["process"])

        state["start"], state["stop"] = start, stop
        start()
        try:
            yield state
        finally:
            stop()


class Load:
    """Client threads sending requests in a loop, each outcome recorded with its times."""

    PATHS = ["/api/batches?per_page=5", "/api/batches/batch_0003", "/api/metrics"]

    def __init__(self, base, headers, threads=4):
        self.base, self.headers = base, headers
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, index):
        session = requests.Session()
        turn = index
        while not self._stop.is_set():
            path = self.PATHS[turn % len(self.PATHS)]
            turn += 1
            started = time.monotonic()
            try:
                response = session.get(self.base + path, headers=self.headers, timeout=20)
                status, body = response.status_code, response.json()
            except (requests.RequestException, ValueError) as exc:
                status, body = None, repr(exc)
            with self._lock:
                self.records.append({"path": path, "start": started, "end": time.monotonic(),
                                     "status": status, "body": body})
            time.sleep(0.05)
        session.close()

    def between(self, start, end):
        with self._lock:
            return [r for r in self.records if r["start"] >= start and r["end"] <= end]

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def test_database_outage_answers_503_and_service_resumes(private_db_server, servers):
    """Stop the database under load, then start it again on the same port and data.

    Six clients on 2 workers x 8 threads: however the connections spread over the workers,
    each client has a thread of its own. (While the database is down a request holds its
    thread for the server selection timeout, so more clients than threads would queue.)
    Each worker serves several requests at once, so nothing in a worker may make them wait
    for each other's timeouts.
    """
    uri = private_db_server["uri"]
    db_name = "segdash_outage"
    lead = prepare_database(uri, db_name)
    client = MongoClient(uri)
    insert_batches(client[db_name], range(1, 21))
    client.close()
    server = GunicornServer(uri, db_name, workers=2, GUNICORN_THREADS="8")
    servers.append(server)
    workers = server.workers()

    load = Load(server.base, lead, threads=6)
    try:
        time.sleep(2)
        stopping = time.monotonic()
        private_db_server["stop"]()
        stopped = time.monotonic()
        time.sleep(6)
        health = server.get("/healthz", timeout=15)
        assert server.workers() == workers  # no worker died or was replaced
        restarting = time.monotonic()
        private_db_server["start"]()
        restarted = time.monotonic()
        # Service resumes without touching Gunicorn: every client sees 200 again.
        wait_for(lambda: (recent := load.between(restarted, time.monotonic())[-12:]) and len(recent) == 12
                 and all(r["status"] == 200 for r in recent), timeout=60, what="service resuming")
        first_ok = min(r["end"] for r in load.between(restarted, time.monotonic()) if r["status"] == 200)
        time.sleep(1)
    finally:
        load.stop()

    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "db": "unreachable"}
    before = load.between(0, stopping)
    assert before and all(r["status"] == 200 for r in before), before[-3:]
    # Every request in flight or sent while the database was down (and answered before it was
    # back) got an answer, quickly: 503 in the JSON error format, or 200 from a worker's caches
    # until it next checks the shared cache version (at most a second).
    during = [r for r in load.between(0, restarting) if r["end"] > stopping]
    assert all(r["status"] in (200, 503) for r in during), [r for r in during if r["status"] not in (200, 503)]
    assert max(r["end"] - r["start"] for r in during) < 5, sorted(r["end"] - r["start"] for r in during)[-5:]
    settled = [r for r in during if r["start"] >= stopped + 1.5]
    assert len(settled) >= 4 and all(r["status"] == 503 for r in settled), [(r["path"], r["status"]) for r in settled]
    for record in (r for r in during if r["status"] == 503):
        assert set(record["body"]) == {"error", "message", "request_id"}
        assert record["body"]["error"] == "database_unavailable"
    after = load.between(first_ok, time.monotonic())
    assert after and all(r["status"] == 200 for r in after)
    assert server.get("/api/batches", headers=lead).json()["total"] == 20  # the data came back with it
    assert server.workers() == workers
    durations = [r["end"] - r["start"] for r in during if r["status"] == 503]
    first_503 = min(r["end"] for r in during if r["status"] == 503) - stopping
    print(f"\noutage: {len(durations)} requests answered 503 (first {first_503:.1f}s after the stop; "
          f"each in median {statistics.median(durations):.2f}s, max {max(durations):.2f}s); service back "
          f"{first_ok - restarted:.1f}s after the database answered again ({restarted - restarting:.1f}s to "
          f"restart it); {len(after)} requests OK after; workers {workers} unchanged")


# ---------------------------------------------------------------- a job through a database outage


def test_a_job_survives_a_30_second_database_outage(private_db_server, runners):
    """The database goes away for 30 s in the middle of a sync: the runner waits, never crashes,
    and the same run goes on from its last checkpoint when the database is back."""
    from helpers import build_app

    uri = private_db_server["uri"]
    db_name = "segdash_job_outage"
    lead = prepare_database(uri, db_name)
    client = MongoClient(uri, tz_aware=True)
    database = client[db_name]
    expected, _total = sync_dataset(database)
    runner = RunnerProcess(uri, db_name, SYNC_CHUNK_SIZE="100")  # many short chunks: still running at the outage
    runners.append(runner)
    app = build_app(uri, db_name)
    response = app.test_client().post(SYNC, headers=lead)
    assert response.status_code == 202, response.get_data(as_text=True)
    job = job_id(response.get_json())
    wait_for(lambda: database.jobs.find_one({"_id": job})["progress"]["done"] > 0, timeout=120, interval=0.1,
             what="the sync making progress")
    before = database.jobs.find_one({"_id": job})
    assert before["state"] == "running", "the sync ended before the outage: give it more files"
    client.close()

    private_db_server["stop"]()
    time.sleep(30)
    assert runner.process.poll() is None, "the runner died during the outage:\n" + runner.output()
    private_db_server["start"]()

    client = MongoClient(uri, tz_aware=True)
    database = client[db_name]
    try:
        done = wait_for(lambda: (doc := database.jobs.find_one({"_id": job}))["state"] not in ("queued", "running")
                        and doc, timeout=300, what="the job finishing after the outage")
        assert done["state"] == "done", done
        assert done["attempts"] == 1, runner.output()[-5000:]  # the same run went on: no takeover
        assert done["progress"]["done"] >= before["progress"]["done"]
        assert runner.process.poll() is None
        assert_linked_exactly_once(database, expected)
    finally:
        client.close()
    print(f"\njob through a 30 s outage: checkpoint at {before['progress']['done']} files before it; "
          f"done after it, attempt 1")


# ---------------------------------------------------------------- two instances, one lease


def test_two_instances_start_a_sync_at_once_one_runs(mongo_uri, own_database, servers, runners):
    db_name, database = own_database
    # 2,000 files to link: the sync runs for seconds, the two requests arrive within milliseconds.
    insert_batches(database, range(1, 101))
    names = [f"batch_{n:04d}/img_{k}.png" for n in range(1, 101) for k in range(20)]
    insert_unlinked_files(database, names)
    lead = prepare_database(mongo_uri, db_name)
    first = GunicornServer(mongo_uri, db_name, workers=2)
    servers.append(first)
    second = GunicornServer(mongo_uri, db_name, workers=2)
    servers.append(second)

    barrier = threading.Barrier(2)
    results = {}

    def fire(server):
        barrier.wait(30)
        response = server.post(SYNC, headers=lead, timeout=60)
        results[server.port] = (response.status_code, response.json())

    threads = [threading.Thread(target=fire, args=(server,)) for server in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)

    statuses = sorted(status for status, _ in results.values())
    assert statuses == [202, 409], results
    accepted = next(body for status, body in results.values() if status == 202)
    refused = next(body for status, body in results.values() if status == 409)
    assert set(refused) == {"error", "message", "job_id", "request_id"}
    assert refused["error"] == "job_running"
    assert refused["job_id"] == accepted["job_id"]
    # One runner per host: either may run it; the lease lets only one.
    runners.append(RunnerProcess(mongo_uri, db_name))
    runners.append(RunnerProcess(mongo_uri, db_name))
    ran = wait_for(lambda: (j := first.get(f"/api/jobs/{accepted['job_id']}", headers=lead).json())["state"]
                   not in ("queued", "running") and j, timeout=120, what="the sync finishing")
    assert ran["state"] == "done" and ran["attempts"] == 1
    assert ran["result"]["files_linked"] == len(names)
    assert database.jobs.count_documents({"kind": "sync"}) == 1
    owner, linked = links_consistent_now(database)
    assert linked == len(owner) == len(names)
    print(f"\ntwo instances: sync of {len(names)} files took {ran['result']['duration_ms']} ms; the other got 409")


# ---------------------------------------------------------------- uploads cut off


def multipart_head(boundary, filename):
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()


def request_head(port, headers, extra):
    lines = ["POST /api/masks HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in headers.items()), *extra, "", ""]
    return "\r\n".join(lines).encode()


def no_orphans(database):
    """Every chunk belongs to a masks.files document."""
    files = set(database["masks.files"].distinct("_id"))
    chunk_owners = set(database["masks.chunks"].distinct("files_id"))
    return chunk_owners - files


def wait_for_logged(server, path, count, timeout=30):
    """The app's request log lines for `path` (one per request handled), once there are `count`."""
    def logged():
        found = [line for line in server.json_lines() if line.get("path") == path and "status" in line]
        return found if len(found) >= count else None
    return wait_for(logged, timeout, what=f"{count} request(s) to {path} logged")


def test_uploads_cut_off_leave_no_orphan_chunks(mongo_uri, own_database, servers):
    db_name, database = own_database
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2, MAX_UPLOAD_MB="6")
    servers.append(server)
    boundary = "segdashboundary"
    payload = os.urandom(5 * 1024 * 1024)

    # 1. Content-Length promises a 5 MB file; 2 MB arrive, then the client goes away.
    head = multipart_head(boundary, "cut.png")
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + len(payload) + len(tail)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request_head(server.port, lead, [
            f"Content-Type: multipart/form-data; boundary={boundary}", f"Content-Length: {length}"]))
        sock.sendall(head + payload[:2 * 1024 * 1024])
    # 2. Chunked upload (no Content-Length) past MAX_UPLOAD_MB: refused mid-stream.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request_head(server.port, lead, [
            f"Content-Type: multipart/form-data; boundary={boundary}", "Transfer-Encoding: chunked"]))
        body = multipart_head(boundary, "big.png") + os.urandom(8 * 1024 * 1024) + tail
        answer = b""
        try:
            for start in range(0, len(body), 64 * 1024):
                piece = body[start:start + 64 * 1024]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before reading it all
        sock.settimeout(30)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"request_entity_too_large"' in answer.replace(b" ", b""), answer[-300:]
    # 3. An empty file: the GridFS upload stream is opened, then the upload is refused.
    empty = server.post("/api/masks", headers=lead, files={"file": ("empty.png", b"")})
    assert empty.status_code == 400 and empty.json()["error"] == "empty_file"

    logged = wait_for_logged(server, "/api/masks", 3)
    # Each was refused with a 4xx (the cut-off one as a bad request), none crashed the handler.
    assert sorted(line["status"] for line in logged) == [400, 400, 413], logged
    assert database["masks.files"].count_documents({}) == 0
    assert database["masks.chunks"].count_documents({}) == 0
    # The service is fine afterwards: a whole upload is stored, with all its chunks and nothing else.
    ok = server.post("/api/masks", headers=lead, files={"file": ("whole.png", payload)}, timeout=60)
    assert ok.status_code == 201, ok.text
    assert no_orphans(database) == set()
    assert database["masks.files"].count_documents({}) == 1
    print("\nuploads cut off / too large / empty: " + ", ".join(str(line["status"]) for line in logged))
