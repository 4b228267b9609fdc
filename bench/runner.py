"""The benchmark, in order: data, in-process measurements, Gunicorn measurements, report.

    .venv/bin/python -m bench                 # full run (about 30 minutes on 2 cores)
    .venv/bin/python -m bench --quick --out /tmp/b/BENCHMARKS.md   # smoke run, tiny data

Every comparison is made in this one run, on one database server and the same data.
"""
import argparse
import datetime
import json
import os
import platform
import random
import threading
import time
import traceback
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Importing `app` builds a module-level app: give it a key so it does not warn.
os.environ.setdefault("SECRET_KEY", "segdash-bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.counting import COUNTER, classify, measure_call  # noqa: E402  (listener first)

# isort: split
import psutil  # noqa: E402

from bench import baseline, datasets, floor, load, profiling, report, resume, servers, wait  # noqa: E402
from bench.settings import FULL, QUICK  # noqa: E402

DB_PREFIX = "segdash_bench"
LIST_PATH = "/api/batches?per_page=50"


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_app(uri, db_name):
    """SegDash's app, configured for in-process measurements.

    CACHE_VERSION_CHECK_SECONDS is long so that round-trip counts do not depend
    on timing (as in tests/test_round_trips.py): the cache version is otherwise
    re-read at most once a second per worker, reported as bookkeeping.
    MONGO_SOCKET_TIMEOUT_MS=0: the 10x sync's single bulk write runs longer than
    the shipped 60 s socket timeout on SecantusDB (reported).
    SYNC_OVERLAP_SECONDS=0: the data set is made seconds before it is measured, so
    with the shipped 10-minute overlap an idle sync would re-read every file; in
    use, the overlap holds only the files added in its last minutes.
    EXPENSIVE_RATE_LIMIT is lifted: the uncached list cases search more often than one
    user may in a minute, and what is measured is the search, not the limit.
    """
    from app import create_app

    return create_app({"MONGO_URI": uri, "MONGO_DB": db_name, "SECRET_KEY": "segdash-bench",
                       "SECRET_KEY_IS_EPHEMERAL": False, "CACHE_VERSION_CHECK_SECONDS": 3600.0,
                       "MONGO_SOCKET_TIMEOUT_MS": 0, "LOG_LEVEL": "WARNING", "SYNC_OVERLAP_SECONDS": 0,
                       "EXPENSIVE_RATE_LIMIT": "1000000 per minute"})


def machine_info():
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = psutil.virtual_memory()
    return {
        "cpu_model": cpu_model or "unknown",
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": memory.total / 1024 ** 3,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }


def package_versions():
    import importlib.metadata as md

    out = {}
    for name in ("Flask", "Werkzeug", "pymongo", "gunicorn", "gevent", "cachetools", "psutil", "matplotlib",
                 "py-spy", "SecantusDB"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


# ------------------------------------------------------------------ in-process measurements


class Endpoints:
    """SegDash's endpoints through app.test_client(), with the commands each one sent."""

    def __init__(self, app, token):
        self.app = app
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.db_name = app.config["MONGO_DB"]

    def call(self, method, path, **kwargs):
        # Warm the token lookup (a 404 that sends no command), then measure one request.
        warm = self.client.get("/api/jobs/warm-up", headers=self.headers)
        assert warm.status_code == 404, warm.get_data(as_text=True)
        COUNTER.clear()
        began = time.perf_counter()
        response = self.client.open(path, method=method, headers=self.headers, **kwargs)
        seconds = time.perf_counter() - began
        summary = classify(COUNTER.snapshot(), self.db_name)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        body = response.get_json()
        return {"seconds": seconds, "response_bytes": len(response.data), **summary}, body

    def job(self, path):
        """Start a background job and run it to its end in this process (as a job runner does):
        the request, the job's chunks and its bookkeeping are measured together. Returns the result."""
        from bson import ObjectId

        import db
        import jobrunner

        warm = self.client.get("/api/jobs/warm-up", headers=self.headers)
        assert warm.status_code == 404, warm.get_data(as_text=True)
        COUNTER.clear()
        began = time.perf_counter()
        response = self.client.post(path, headers=self.headers)
        if response.status_code != 202:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        stamps = []  # when each checkpoint wrote progress (in process: no command of its own)
        checkpoint = jobrunner.JobContext.checkpoint

        def recording(context, done, total, unit, *args, **kwargs):
            stamps.append(time.perf_counter())
            return checkpoint(context, done, total, unit, *args, **kwargs)

        with mock.patch.object(jobrunner.JobContext, "checkpoint", recording):
            if not jobrunner.Runner(self.app).run_once():
                raise RuntimeError(f"POST {path}: no job to run")
        seconds = time.perf_counter() - began
        marks = [began] + stamps + [began + seconds]
        progress = {"checkpoints": len(stamps), "first_s": (stamps[0] - began) if stamps else None,
                    "max_gap_s": max(b - a for a, b in zip(marks, marks[1:]))}
        summary = classify(COUNTER.snapshot(), self.db_name)
        job = db.jobs().find_one({"_id": ObjectId(response.get_json()["job_id"])})
        if job["state"] != "done":
            raise RuntimeError(f"POST {path}: job {job['state']}: {job.get('error')}")
        return {"seconds": seconds, "response_bytes": len(response.data), "progress": progress,
                **summary}, job["result"]


def _baseline_call(db_name, function, *args):
    result, summary, seconds = measure_call(db_name, function, *args)
    return {"seconds": seconds, "response_bytes": len(result) if isinstance(result, str) else None,
            **summary}, result


def measure_scale(app, scale, prof, token):
    """Round trips, documents, bytes and wall time per operation at one scale."""
    import cache
    import db

    out = {"segdash": {}, "baseline": {}, "floor": {}, "notes": []}
    seg, base, flo = out["segdash"], out["baseline"], out["floor"]
    with app.app_context():
        database = db.database()
        db_name = database.name
        batch_id_for = app.extensions["segdash_matcher"].batch_id_for
        api = Endpoints(app, token)

        log(f"{scale.key}: list, metrics, check (SegDash, baseline, floor)")
        seg["list"], body = api.call("GET", LIST_PATH)
        seg["list"]["items"] = len(body["items"])
        seg["list"]["total"] = body["total"]
        seg["list_cached"], _ = api.call("GET", LIST_PATH)
        seg["list_next_page"], body = api.call("GET", LIST_PATH + "&page=2")
        seg["list_next_page"]["items"] = len(body["items"])
        seg["list_filtered"], _ = api.call("GET", "/api/batches?status=assigned&per_page=20")
        seg["list_filtered_cached"], _ = api.call("GET", "/api/batches?status=assigned&per_page=20")
        seg["metrics"], _ = api.call("GET", "/api/metrics")
        seg["metrics_cached"], _ = api.call("GET", "/api/metrics")
        seg["check"], body = api.call("GET", "/api/check-mongo-files")
        seg["check"]["files_total"] = body["files_total"]
        seg["check"]["unlinked"] = body["unlinked"]

        base["list"], text = _baseline_call(db_name, baseline.list_all_then_slice, database)
        base["list"]["items"] = len(json.loads(text)["items"])
        base["metrics"], _ = _baseline_call(db_name, baseline.metrics_no_cache, database)
        base["check"], _ = _baseline_call(db_name, baseline.check_load_all, database, batch_id_for)
        docs, summary, seconds = measure_call(db_name, floor.list_page)
        flo["list"] = {"seconds": seconds, "items": len(docs), **summary}

        # ---- sync: baseline (time-boxed), SegDash, floor, each from the same unlinked state
        if not scale.unlinked:
            out["reset_seconds_initial"] = datasets.reset_links()
        log(f"{scale.key}: baseline sync (time box {scale.baseline_sync_seconds:.0f}s)")
        stats, summary, seconds = measure_call(db_name, baseline.sync_loops, database, scale.baseline_sync_seconds)
        links = stats.pop("links")
        completed_batches = stats.pop("completed_batches")
        calibration = calibrate_link_updates(database, batch_id_for, stats, prof.baseline_update_samples)
        base["sync"] = {"seconds": seconds, **summary, "loop": stats, "calibration": calibration}
        linked_ids = [file_id for ids in links.values() for file_id in ids] + calibration.pop("file_ids")
        touched = sorted(set(links) | set(calibration.pop("batch_ids")))
        datasets.undo_links(linked_ids, touched)
        cache.record_write()

        log(f"{scale.key}: SegDash sync")
        seg["sync"], body = api.job("/api/sync-batch-files")
        seg["sync"]["result"] = {k: body[k] for k in ("files_scanned", "files_linked", "batches_updated",
                                                       "unmatched", "missing_batches", "closed", "duration_ms")}
        out["baseline_equivalence"] = compare_links(database, links, completed_batches)
        out["baseline_simulation"] = simulate_baseline(database)

        out["reset_seconds"] = datasets.reset_links()
        cache.record_write()
        existing = floor.existing_batch_ids()
        log(f"{scale.key}: floor sync")
        result, summary, seconds = measure_call(db_name, floor.sync, existing, batch_id_for)
        flo["sync"] = {"seconds": seconds, **summary, "result": result}
        if result["files_linked"] != seg["sync"]["result"]["files_linked"]:
            out["notes"].append(f"floor linked {result['files_linked']} files, SegDash "
                                f"{seg['sync']['result']['files_linked']}")
        cache.record_write()
        seg["sync_idle"], body = api.job("/api/sync-batch-files")
        seg["sync_idle"]["result"] = {"files_scanned": body["files_scanned"], "files_linked": body["files_linked"]}

        log(f"{scale.key}: auto-create (SegDash, baseline)")
        seg["auto_create"], body = api.job("/api/auto-create-batches")
        seg["auto_create"]["result"] = {"created": body["created"]}
        removed = database.batches.delete_many({"metadata.source": "auto-create"}).deleted_count
        cache.record_write()
        result, summary, seconds = measure_call(db_name, baseline.auto_create_one_by_one, database, batch_id_for)
        base["auto_create"] = {"seconds": seconds, **summary, "result": result}
        # The baseline's batches have the old shape (no number, search keys or progress): removed,
        # so that later sections list the data set itself.
        database.batches.delete_many({"metadata.source": "auto-create"})
        if removed != body["created"] or result["created"] != body["created"]:
            out["notes"].append(f"auto-create: SegDash created {body['created']}, removed {removed}, "
                                f"baseline created {result['created']}")
        cache.record_write()
    out["baseline_sync_estimate"] = extrapolate_baseline_sync(base["sync"], seg["sync"]["result"]["files_linked"])
    return out


def calibrate_link_updates(database, batch_id_for, stats, samples):
    """Time the baseline's per-file write on files the loop did not reach, when it linked too few.

    These are the writes the old sync would make for those files (right batch,
    from the filename rule); they are undone afterwards with the loop's own.
    """
    out = {"files": 0, "seconds": 0.0, "file_ids": [], "batch_ids": []}
    if stats["files_linked"] >= samples:
        return out
    existing = set()
    candidates = []
    for doc in database["masks.files"].find({"metadata.linked_at": None}, {"filename": 1}).limit(samples * 20):
        batch_id = batch_id_for(doc.get("filename"))
        if batch_id:
            candidates.append((doc["_id"], batch_id))
    if candidates:
        wanted = sorted({b for _, b in candidates})
        existing = {d["id"] for d in database.batches.find({"id": {"$in": wanted}}, {"_id": 0, "id": 1})}
    chosen = [(f, b) for f, b in candidates if b in existing][:samples - stats["files_linked"]]
    began = time.perf_counter()
    for file_id, batch_id in chosen:
        baseline.link_one(database, file_id, batch_id)
    out["seconds"] = time.perf_counter() - began
    out["files"] = len(chosen)
    out["file_ids"] = [f for f, _ in chosen]
    out["batch_ids"] = sorted({b for _, b in chosen})
    return out


def compare_links(database, baseline_links, batch_ids):
    """Did the baseline link, for the open batches it finished, exactly the files SegDash linked there?

    Reviewed batches are left out: the old sync linked files into them, SegDash does not.
    """
    import file_sync

    closed = {doc["id"] for doc in database.batches.find(
        {"id": {"$in": batch_ids}, "status": {"$in": list(file_sync.CLOSED_STATUSES)}}, {"_id": 0, "id": 1})}
    batch_ids = [b for b in batch_ids if b not in closed]
    if not batch_ids:
        return {"batches_compared": 0, "same": None}
    segdash = {}
    for record in database.mask_records.find({"batch_id": {"$in": batch_ids}}, {"_id": 0, "batch_id": 1, "file_id": 1}):
        segdash.setdefault(record["batch_id"], set()).add(record["file_id"])
    differing = [b for b in batch_ids if set(baseline_links.get(b, [])) != segdash.get(b, set())]
    files = sum(len(baseline_links.get(b, [])) for b in batch_ids)
    return {"batches_compared": len(batch_ids), "files_compared": files, "same": not differing,
            "differing": differing[:10]}


def simulate_baseline(database):
    """Which files would the old sync's 45 regexes per batch link, and to which batch? (Python, untimed)

    Compared file by file with what SegDash's sync just linked, over the whole dataset.
    """
    began = time.perf_counter()
    existing = {doc["id"] for doc in database.batches.find({}, {"_id": 0, "id": 1})}
    files = [(doc["_id"], doc.get("filename")) for doc in database["masks.files"].find({}, {"filename": 1})]
    segdash = {record["file_id"]: record["batch_id"]
               for record in database.mask_records.find({}, {"_id": 0, "file_id": 1, "batch_id": 1})}
    old = baseline.simulate_links(files, existing)
    same = sum(1 for file_id, batch_id in old.items() if segdash.get(file_id) == batch_id)
    return {"files": len(files), "segdash_linked": len(segdash), "baseline_linked": len(old), "same": same,
            "only_segdash": sum(1 for f in segdash if f not in old),
            "only_baseline": sum(1 for f in old if f not in segdash),
            "different_batch": sum(1 for f, b in old.items() if f in segdash and segdash[f] != b),
            "seconds": time.perf_counter() - began}


def extrapolate_baseline_sync(measured, files_to_link):
    """Full baseline sync time and round trips, from the measured part (linear in finds and links)."""
    loop = measured["loop"]
    calibration = measured["calibration"]
    total_finds = baseline.FINDS_PER_BATCH * loop["batches_total"]
    if loop["complete"]:
        return {"extrapolated": False, "seconds": measured["seconds"], "round_trips": measured["n_data"],
                "fraction_finds": 1.0, "total_finds": total_finds, "total_link_updates": 2 * loop["files_linked"]}
    per_find = loop["find_seconds"] / loop["finds"] if loop["finds"] else None
    linked = loop["files_linked"] + calibration["files"]
    per_link = (loop["update_seconds"] + calibration["seconds"]) / linked if linked else 0.0
    seconds = per_find * total_finds + per_link * files_to_link if per_find is not None else None
    setup_round_trips = measured["n_data"] - loop["finds"] - loop["updates"]
    return {
        "extrapolated": True, "seconds": seconds, "per_find_s": per_find, "per_file_link_s": per_link,
        "total_finds": total_finds, "finds_measured": loop["finds"],
        "fraction_finds": loop["finds"] / total_finds if total_finds else None,
        "files_linked_measured": loop["files_linked"], "calibration_files": calibration["files"],
        "files_to_link": files_to_link, "total_link_updates": 2 * files_to_link,
        "round_trips": setup_round_trips + total_finds + 2 * files_to_link,
        "measured_seconds": measured["seconds"],
    }


def floor_list_load(app, prof):
    """The database ceiling for the list: 16 threads each sending the one-page find directly."""
    latencies, lock = [], threading.Lock()
    per_thread = max(1, prof.floor_list_requests // prof.clients)
    deadline = time.perf_counter() + prof.load_seconds

    def worker():
        with app.app_context():
            for _ in range(per_thread):
                if time.perf_counter() > deadline:
                    return
                began = time.perf_counter()
                floor.list_page()
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000.0)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(prof.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    return {"requests": len(latencies), "ok": len(latencies), "errors": 0, "seconds": seconds,
            "rps": len(latencies) / seconds if seconds else 0.0,
            "p50_ms": load.percentile(latencies, 0.5), "p95_ms": load.percentile(latencies, 0.95),
            "bounds": {"max_requests": per_thread * prof.clients, "max_seconds": prof.load_seconds}}


def cpu_per_request(app, token, prof):
    """CPU time per request in this process (test client, one thread): where SegDash's time goes
    once the database is out of the way. The database server is another process, so its work is
    not in these CPU figures (only in the wall times)."""
    from bench import bare_app

    bare = bare_app.app.test_client()
    api = Endpoints(app, token)
    count = prof.cpu_requests
    rows = {}

    def timed(name, function, n):
        function()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            function()
        rows[name] = {"requests": n, "cpu_ms": (time.process_time() - cpu) * 1000 / n,
                      "wall_ms": (time.perf_counter() - wall) * 1000 / n}

    with app.app_context():
        api.call("GET", LIST_PATH)
        api.call("GET", "/api/metrics")
        timed("bare", lambda: bare.get("/bare"), count)
        timed("healthz", lambda: api.client.get("/healthz"), max(5, count // 10))
        timed("metrics_cached", lambda: api.client.get("/api/metrics", headers=api.headers), count)
        timed("list", lambda: api.client.get(LIST_PATH, headers=api.headers), count)

        def run():
            for _ in range(count):
                api.client.get(LIST_PATH, headers=api.headers)

        _, profile = profiling.cprofile(run, top=60)
    return {"rows": rows, "profile_list": profile}


def cprofile_list(app, token, prof):
    """cProfile of cached list requests inside this process (test client), top entries."""
    api = Endpoints(app, token)
    with app.app_context():
        api.call("GET", LIST_PATH)  # count cached

        def run():
            for _ in range(prof.cprofile_requests):
                api.client.get(LIST_PATH, headers=api.headers)

        began = time.perf_counter()
        _, stats = profiling.cprofile(run)
        stats["wall_s"] = time.perf_counter() - began
        stats["requests"] = prof.cprofile_requests
    return stats


# ------------------------------------------------------------------ Gunicorn measurements


def warm(server, paths, headers, per_worker=3):
    """A few requests so every worker has its count/metrics cached (bounded in count and time)."""
    return load.run(server.base, paths, headers, clients=min(8, server.worker_count * 2), processes=1,
                    max_requests=max(8, server.worker_count * per_worker), max_seconds=60.0, timeout=30.0)


def load_section(uri, db_name, token, prof, logs, app):
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    kw = dict(clients=prof.clients, processes=prof.client_processes, max_requests=prof.load_requests,
              max_seconds=prof.load_seconds)

    log("load: bare Flask endpoint")
    with servers.Gunicorn("bench.bare_app:app", uri, db_name, prof.workers, log_dir=logs) as server:
        warm(server, ["/bare"], {})
        out["bare"] = load.run(server.base, ["/bare"], {}, **kw)
    log("load: SegDash cached /api/batches")
    with servers.Gunicorn("app:app", uri, db_name, prof.workers, log_dir=logs) as server:
        warm(server, [LIST_PATH], headers)
        out["segdash_list"] = load.run(server.base, [LIST_PATH], headers, **kw)
        log("load: profiles (py-spy on the database server and the Gunicorn workers)")
        out["profiles"] = profile_under_load(server, headers, prof)
    log("load: baseline list (every batch loaded)")
    with servers.Gunicorn("bench.baseline_app:app", uri, db_name, prof.workers, log_dir=logs) as server:
        warm(server, ["/baseline/batches"], {}, per_worker=1)
        out["baseline_list"] = load.run(server.base, ["/baseline/batches"], {}, **kw)
    log("load: floor list (the page find alone, 16 threads)")
    out["floor_list"] = floor_list_load(app, prof)
    return out


def profile_under_load(server, headers, prof):
    """py-spy on the database server and on the workers while 16 clients list batches."""
    profiles = {}
    db_pid = STATE.get("db_pid")
    spies = {}
    if db_pid:
        spies["database"] = profiling.PySpy(db_pid, prof.profile_seconds + 1).start()
    spies["workers"] = profiling.PySpy(server.process.pid, prof.profile_seconds + 1, subprocesses=True).start()
    time.sleep(1.0)  # let py-spy attach before the load starts
    run = load.run(server.base, [LIST_PATH], headers, clients=prof.clients, processes=prof.client_processes,
                   max_requests=prof.load_requests, max_seconds=prof.profile_seconds)
    for name, spy in spies.items():
        profiles[name] = spy.finish()
    profiles["load_during_profile"] = {k: run[k] for k in ("requests", "rps", "p50_ms", "p95_ms")}
    return profiles


def gevent_check(module, uri, db_name, headers, prof, logs):
    """Does SegDash as shipped serve concurrent requests on gevent workers? (bounded check)

    16 clients, a few seconds at most, a short per-request timeout. When requests time out,
    the stuck worker's stack (py-spy dump) is kept as the evidence.
    """
    workers = max(prof.sweep_workers)
    with servers.Gunicorn(module, uri, db_name, workers, "gevent", log_dir=logs) as server:
        run = load.run(server.base, ["/api/metrics", LIST_PATH], headers, clients=prof.clients,
                       processes=prof.client_processes, max_requests=prof.clients * 4,
                       max_seconds=prof.hang_check_seconds, timeout=prof.hang_check_seconds)
        hung = run["ok"] < run["requests"] or run["errors"] > 0
        stacks = []
        if hung:
            for worker in server.workers_now()[:2]:
                stacks.append(profiling.py_spy_dump(worker.pid))
        server.stop(timeout=5)
        timeouts = server.log_tail(4000).count("WORKER TIMEOUT")
    return {"module": module, "workers": workers, "timeout_s": prof.hang_check_seconds,
            "requests_sent": run["requests"] + run["errors"], "ok": run["ok"],
            "errors": run["errors"], "hung": hung, "stacks": stacks, "worker_timeouts_logged": timeouts}


def sweep_section(uri, db_name, token, prof, logs):
    headers = {"Authorization": f"Bearer {token}"}
    out = {"rows": [], "gevent_as_shipped": None}
    if "gevent" in prof.sweep_classes:
        log("workers: gevent as shipped (bounded hang check)")
        out["gevent_as_shipped"] = gevent_check("app:app", uri, db_name, headers, prof, logs)
    for worker_class in prof.sweep_classes:
        for workers in prof.sweep_workers:
            module = "app:app"
            log(f"workers: {worker_class} x {workers} ({module})")
            row = {"worker_class": worker_class, "workers": workers, "module": module, "max_requests": 0}
            try:
                with servers.Gunicorn(module, uri, db_name, workers, worker_class, log_dir=logs,
                                      extra_env={"GUNICORN_MAX_REQUESTS": "0"}) as server:
                    warm(server, ["/api/metrics", LIST_PATH], headers, per_worker=4)
                    for key, path in (("metrics_cached", "/api/metrics"), ("list", LIST_PATH)):
                        row[key] = load.run(server.base, [path], headers, clients=prof.clients,
                                            processes=prof.client_processes, max_requests=prof.sweep_requests,
                                            max_seconds=prof.sweep_seconds, timeout=30.0)
            except Exception as exc:  # a configuration that cannot serve is reported, not fatal
                row["error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            out["rows"].append(row)
    workers = max(prof.sweep_workers)
    log(f"workers: gthread x {workers} as shipped (max_requests 500 + jitter)")
    with servers.Gunicorn("app:app", uri, db_name, workers, "gthread", log_dir=logs) as server:
        warm(server, ["/api/metrics"], headers, per_worker=4)
        out["recycling"] = {"workers": workers, "metrics_cached": load.run(
            server.base, ["/api/metrics"], headers, clients=prof.clients, processes=prof.client_processes,
            max_requests=prof.sweep_requests, max_seconds=prof.sweep_seconds, timeout=30.0)}
    return out


def mixed_paths(batch_ids, count=2000, seed=11):
    """The mixed request list for the memory run (cycled by the clients)."""
    rng = random.Random(seed)
    segmenters = ["alice", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan", "julia", "kofi",
                  "lena"]
    statuses = ["pending", "assigned", "in_progress", "completed", "reviewed", "rejected"]
    mix = [
        (30, lambda: f"/api/batches/{rng.choice(batch_ids)}"),
        (20, lambda: "/api/metrics"),
        (14, lambda: "/healthz"),
        (10, lambda: "/api/jobs?limit=5"),
        (8, lambda: "/api/users?role=segmenter"),
        (10, lambda: f"/api/batches?assignee={rng.choice(segmenters)}&status={rng.choice(statuses)}&per_page=20"),
        (5, lambda: f"/api/batches?status={rng.choice(statuses)}&per_page=50"),
        (3, lambda: f"/api/batches?per_page=50&page={rng.randint(1, 5)}"),
    ]
    weights = [w for w, _ in mix]
    return [rng.choices(mix, weights)[0][1]() for _ in range(count)], {
        "detail": 30, "metrics": 20, "healthz": 14, "jobs": 10, "users": 8, "list by assignee+status": 10,
        "list by status": 5, "list pages 1-5": 3}


def memory_section(uri, db_name, token, prof, logs, batch_ids):
    headers = {"Authorization": f"Bearer {token}"}
    paths, weights = mixed_paths(batch_ids)
    log(f"memory: {prof.memory_requests} mixed requests on {prof.workers} workers")
    with servers.Gunicorn("app:app", uri, db_name, prof.workers, log_dir=logs) as server:
        before = server.memory()
        run = load.run(server.base, paths, headers, clients=prof.clients, processes=prof.client_processes,
                       max_requests=prof.memory_requests, max_seconds=prof.memory_seconds)
        time.sleep(0.5)
        after = server.memory()
    return {"before": before, "after": after, "load": run, "mix_percent": weights}


def export_run(module, path, uri, db_name, headers, prof, logs):
    """Stream one export from a 1-worker Gunicorn while sampling that worker's RSS."""
    import http.client

    with servers.Gunicorn(module, uri, db_name, 1, log_dir=logs) as server:
        worker = server.workers_now()[0]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=prof.export_seconds)
        # Warm-up: a tiny export through the same code path (imports, connection pool, first cursor).
        warm_path = "/api/export/batches.csv?q=batch_0000001" if path.startswith("/api/") else "/healthz"
        conn.request("GET", warm_path, headers=headers)
        conn.getresponse().read()
        time.sleep(0.3)
        samples = []
        stop = threading.Event()
        began = time.perf_counter()

        def sample():
            while not stop.is_set():
                try:
                    samples.append((time.perf_counter() - began, worker.memory_info().rss / servers.MB))
                except psutil.Error:
                    return
                stop.wait(0.02)

        start_rss = worker.memory_info().rss / servers.MB
        sampler = threading.Thread(target=sample)
        sampler.start()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        status = response.status
        nbytes = lines = 0
        first_byte = None
        while True:
            chunk = response.read(65536)
            if not chunk:
                break
            if first_byte is None:
                first_byte = time.perf_counter() - began
            nbytes += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - began
        time.sleep(0.2)
        stop.set()
        sampler.join()
        conn.close()
        end_rss = worker.memory_info().rss / servers.MB
    peak = max([rss for _, rss in samples] + [start_rss, end_rss])
    return {"status": status, "rows": max(0, lines - 1), "bytes": nbytes, "seconds": seconds,
            "first_byte_s": first_byte, "rss_start_mb": start_rss, "rss_peak_mb": peak, "rss_end_mb": end_rss,
            "growth_mb": peak - start_rss, "samples": samples[::max(1, len(samples) // 400)]}


def export_section(uri, db_name, token, prof, logs):
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    log("export: SegDash streamed CSV")
    out["segdash"] = export_run("app:app", "/api/export/batches.csv", uri, db_name, headers, prof, logs)
    log("export: baseline (load all, then write)")
    out["baseline"] = export_run("bench.baseline_app:app", "/baseline/export.csv", uri, db_name, {}, prof, logs)
    return out


# ------------------------------------------------------------------ main


STATE = {}


def run(prof, out_path, plots_dir, mongo_uri=None):
    began = time.perf_counter()
    phases = {}
    results = {"profile": prof.name, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "machine": machine_info(), "packages": package_versions(), "phases": phases,
        "scales": {}, "settings": {"clients": prof.clients, "client_processes": prof.client_processes,
                                   "workers": prof.workers, "load_requests": prof.load_requests,
                                   "load_seconds": prof.load_seconds, "memory_requests": prof.memory_requests,
                                   "export_rows": prof.export_rows}}
    import tempfile

    logs = tempfile.mkdtemp(prefix="segdash-bench-logs-")  # Gunicorn logs, kept for inspection
    log(f"Gunicorn logs in {logs}")
    suffix = "" if mongo_uri is None else f"_{os.getpid()}"

    def phase(name):
        phases[name] = time.perf_counter()

    with servers.DatabaseServer(mongo_uri) as dbs:
        STATE["db_pid"] = dbs.pid
        uri = dbs.uri
        apps = {}
        for scale in prof.scales:
            db_name = f"{DB_PREFIX}_{scale.key}{suffix}"
            apps[scale.key] = make_app(uri, db_name)
        with apps[prof.scales[0].key].app_context():
            import db

            results["database"] = dbs.describe(db.client())
        try:
            for scale in prof.scales:
                phase(f"build {scale.key}")
                log(f"building {scale.label}: {scale.batches} batches, {scale.masks} masks")
                with apps[scale.key].app_context():
                    built = datasets.build(scale)
                token = built.pop("token")
                STATE[f"token_{scale.key}"] = token
                results["scales"][scale.key] = {"scale": scale.__dict__, "dataset": built}
                phase(f"measure {scale.key}")
                results["scales"][scale.key].update(measure_scale(apps[scale.key], scale, prof, token))
            big_key = prof.scales[-1].key
            phase(f"wait {big_key}")
            results["wait"] = wait.run(apps[big_key], uri, STATE[f"token_{big_key}"], prof, logs,
                                       STATE.get("db_pid"))
            seed_key = prof.scales[0].key
            seed_app = apps[seed_key]
            seed_db = seed_app.config["MONGO_DB"]
            seed_token = STATE[f"token_{seed_key}"]
            phase("CPU per request")
            results["cprofile_list"] = cprofile_list(seed_app, seed_token, prof)
            results["cpu"] = cpu_per_request(seed_app, seed_token, prof)
            phase("load")
            results["load"] = load_section(uri, seed_db, seed_token, prof, logs, seed_app)
            phase("workers")
            results["workers"] = sweep_section(uri, seed_db, seed_token, prof, logs)
            phase("memory")
            with seed_app.app_context():
                import db

                batch_ids = [d["id"] for d in db.batches().find({}, {"_id": 0, "id": 1})]
            results["memory"] = memory_section(uri, seed_db, seed_token, prof, logs, batch_ids)
            phase("export data")
            export_app = make_app(uri, f"{DB_PREFIX}_export{suffix}")
            with export_app.app_context():
                export_data = datasets.build_export(prof.export_rows)
            export_token = export_data.pop("token")
            results["export_dataset"] = export_data
            phase("export")
            results["export"] = export_section(uri, export_app.config["MONGO_DB"], export_token, prof, logs)
            phase("kill and resume")
            results["resume"] = resume.kill_and_resume(seed_app, uri, seed_db, seed_token, prof, logs)
            phase("end")
        finally:
            if mongo_uri is not None:  # an external server: remove what the benchmark created
                for application in list(apps.values()):
                    with application.app_context():
                        import db

                        db.client().drop_database(application.config["MONGO_DB"])
    if prof.name == "quick":  # the smoke run keeps no logs behind
        import shutil

        shutil.rmtree(logs, ignore_errors=True)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - began
    names = list(phases)
    results["phase_seconds"] = {name: phases[names[i + 1]] - phases[name] for i, name in enumerate(names[:-1])}
    del results["phases"]
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny datasets and short loads (smoke test)")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"), help="report path")
    parser.add_argument("--plots-dir", default=None,
                        help="where the PNG plots and results.json go (default: docs/bench beside the report)")
    parser.add_argument("--mongo-uri", default=os.environ.get("BENCH_MONGO_URI"),
                        help="use this server instead of starting one (databases segdash_bench_* are dropped)")
    parser.add_argument("--render", metavar="RESULTS_JSON",
                        help="only write the report again from a results.json of an earlier run")
    args = parser.parse_args(argv)
    prof = QUICK if args.quick else FULL
    out_path = os.path.abspath(args.out)
    plots_dir = os.path.abspath(args.plots_dir or os.path.join(os.path.dirname(out_path), "docs", "bench"))
    os.makedirs(plots_dir, exist_ok=True)
    if args.render:
        with open(args.render) as handle:
            results = json.load(handle)
        report.write(results, out_path, plots_dir)
        log(f"report written from {args.render}: {out_path}")
        return 0
    log(f"profile {prof.name}; report {out_path}; plots {plots_dir}")
    try:
        results = run(prof, out_path, plots_dir, args.mongo_uri)
    except Exception:
        traceback.print_exc()
        return 1
    with open(os.path.join(plots_dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1, default=str)
    report.write(results, out_path, plots_dir)
    log(f"done in {results['total_seconds'] / 60:.1f} min: {out_path}")
    return 0
