"""Soak test: SegDash under Gunicorn with worker recycling, mixed reads and writes, for minutes.

    .venv/bin/python -m bench.soak --minutes 5 [--json soak.json]

Starts its own database server (embedded_db, through bench.servers.DatabaseServer) and
the repository's Gunicorn configuration (bench.servers.Gunicorn) on 127.0.0.1, with
worker recycling on (GUNICORN_MAX_REQUESTS 200 + 50 jitter), and seeds seed.py's data
(bench.datasets). Then, round after round, the benchmark's load loop (bench.load.run,
16 clients) sends a shuffled mix planned from the database's current state:

- reads: the batch list (filters, pages, a cursor), batch details, team metrics, the file
  check, CSV exports, mask downloads, the job list;
- writes: status changes through the workflow (each batch one step per round, by its
  segmenter or a lead), bulk (un)assignment, uploads of small masks (new content each
  round: linked at once, waiting for a sync, or naming a batch that does not exist yet),
  syncs and auto-creates (background jobs, run by a job runner beside Gunicorn).

The load loop cycles its list and its clients start at different places in it, so every
request is sent by several clients in a round: a repeated change is a no-op (200), a
repeated upload into a batch is deduplicated (200; one without a batch is stored again,
201), and two clients making the same change at the same moment get 409
`concurrent_update`. Syncs and auto-creates answer 202; one sent while another of its kind
is queued or running gets 409 `job_running`. Those 409s are expected; every other answer
must be the planned one.

Recorded: requests by status class (client side) and by endpoint (the app's own request
log, with server-side p50/p95), client p50/p95 per round, and the RSS of every worker
process sampled every few seconds: first/last/peak per worker generation (a recycled
worker is replaced by a new process) and the trend of the generations' peaks.

Exit status 1 on any 5xx, any request that got no answer, any unexpected status, or
memory beyond the bound: the median peak RSS of the last third of the worker
generations may exceed that of the first third by at most --max-growth-mb, and no
worker may pass --max-worker-mb.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

import psutil

from bench import datasets, load, servers
from bench.settings import Scale

MB = 1024 * 1024

# Answers that are part of the plan, per endpoint. 409: see the module docstring.
EXPECTED = {
    ("GET", "/api/batches"): {200},
    ("GET", "/api/batches/{id}"): {200},
    ("PATCH", "/api/batches/{id}"): {200, 409},
    ("POST", "/api/batches/assign"): {200},
    ("GET", "/api/export/batches.csv"): {200},
    ("GET", "/api/metrics"): {200},
    ("GET", "/api/check-mongo-files"): {200},
    ("GET", "/api/masks/{id}"): {200},
    ("POST", "/api/masks"): {200, 201},
    ("POST", "/api/sync-batch-files"): {202, 409},
    ("POST", "/api/auto-create-batches"): {202, 409},
    ("GET", "/api/jobs"): {200},
}
# Share of the reads in a round's plan, by kind.
READ_WEIGHTS = {"list": 36, "detail": 18, "metrics": 10, "check": 3, "export": 4, "download": 10, "jobs": 4}


@dataclass
class Settings:
    seconds: float = 300.0
    clients: int = 16
    client_processes: int = 2
    workers: int = 4
    threads: int = 2
    max_requests: int = 200
    max_requests_jitter: int = 50
    round_seconds: float = 30.0
    sample_seconds: float = 2.0
    batches: int = 400
    masks: int = 2000
    max_growth_mb: float = 25.0
    max_worker_mb: float = 300.0
    mongo_uri: str | None = None   # an existing server (the tests'); default: start one
    seed: int = 7
    extra_env: dict = field(default_factory=dict)


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_app(uri, db_name):
    from app import create_app

    return create_app({"MONGO_URI": uri, "MONGO_DB": db_name, "SECRET_KEY": "segdash-bench",
                       "SECRET_KEY_IS_EPHEMERAL": False, "LOG_LEVEL": "WARNING"})


# --- Data and plans ---------------------------------------------------------------------

class Planner:
    """Builds each round's request list from the database's state (read through the app's db module)."""

    ASSIGN_GROUP = 10

    def __init__(self, app, settings, lead_token):
        import auth
        import db
        import seed

        self.app = app
        self.rng = random.Random(settings.seed)
        self.lead = {"Authorization": f"Bearer {lead_token}"}
        with app.app_context():
            self.segmenters = {name: {"Authorization": f"Bearer {auth.create_token(name)}"}
                               for name in seed.SEGMENTERS}
            pending = [d["id"] for d in db.batches().find({"status": "pending"}, {"_id": 0, "id": 1}).sort("number", 1)]
            every = [d["id"] for d in db.batches().find({}, {"_id": 0, "id": 1}).sort("number", 1)]
        # Bulk assignment toggles these groups; the workflow moves all the other batches.
        assign_pool = pending[: min(len(pending) // 2, 6 * self.ASSIGN_GROUP)]
        self.assign_groups = [assign_pool[i:i + self.ASSIGN_GROUP]
                              for i in range(0, len(assign_pool), self.ASSIGN_GROUP)]
        self.assign_pool = set(assign_pool)
        self.batch_ids = every
        self.max_number = int(every[-1].rsplit("_", 1)[1]) if every else 0
        self.round = 0
        self.planned = {}     # batch id -> status its step this round leads to
        self.applied = 0      # planned steps found done after their round
        self.planned_total = 0

    # Writes

    def _patch(self, batch_id, body, headers):
        return {"method": "PATCH", "path": f"/api/batches/{batch_id}", "body": json.dumps(body),
                "headers": {**headers, "Content-Type": "application/json"}}

    def _post_json(self, path, body, headers=None):
        return {"method": "POST", "path": path, "body": json.dumps(body),
                "headers": {**(headers or self.lead), "Content-Type": "application/json"}}

    def _upload(self, filename, content, headers, batch_id=None):
        boundary = uuid.uuid4().hex
        parts = []
        if batch_id:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="batch_id"\r\n\r\n{batch_id}\r\n')
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     f"Content-Type: image/x-portable-bitmap\r\n\r\n{content}\r\n--{boundary}--\r\n")
        return {"method": "POST", "path": "/api/masks", "body": "".join(parts),
                "headers": {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}}

    def _mask(self, index):
        """A small plain-text PBM mask, different for every round and index."""
        rng = random.Random(f"{self.round}-{index}")
        rows = [" ".join(rng.choice("01") for _ in range(16)) for _ in range(16)]
        return f"P1\n# soak round {self.round} mask {index}\n16 16\n" + "\n".join(rows) + "\n"

    def _workflow_step(self, doc):
        """(request, resulting status) for one step of `doc` through the workflow, or None."""
        status, assignee = doc.get("status"), doc.get("assignee")
        own = self.segmenters.get(assignee)
        if status == "pending":
            return self._patch(doc["id"], {"assignee": self.rng.choice(sorted(self.segmenters))}, self.lead), "assigned"
        if status == "assigned" and own:
            return self._patch(doc["id"], {"status": "in_progress"}, own), "in_progress"
        if status == "in_progress" and own:
            # Soak batches rarely have a mask per image: the segmenter confirms, as the page asks.
            return self._patch(doc["id"], {"status": "completed", "confirm_incomplete": True}, own), "completed"
        if status == "completed":
            if self.rng.random() < 0.15:
                return self._patch(doc["id"], {"status": "reviewed"}, self.lead), "reviewed"
            change = {"status": "rejected", "reason": f"soak round {self.round}: masks to redo"}
            return self._patch(doc["id"], change, self.lead), "rejected"
        if status == "rejected":
            if own and self.rng.random() < 0.5:
                return self._patch(doc["id"], {"status": "in_progress"}, own), "in_progress"
            return self._patch(doc["id"], {"assignee": None}, self.lead), "pending"
        return None

    def writes(self, length):
        import db

        shares = {"patch": 0.14, "assign": 0.02, "upload": 0.08, "sync": 0.015, "auto": 0.01}
        with self.app.app_context():
            docs = list(db.batches().find({"id": {"$nin": sorted(self.assign_pool)}, "status": {"$ne": "reviewed"}},
                                          {"_id": 0, "id": 1, "status": 1, "assignee": 1}))
            open_own = [d for d in docs if d.get("status") == "assigned" and d.get("assignee") in self.segmenters]
        self.rng.shuffle(docs)
        requests, self.planned = [], {}
        for doc in docs[:max(1, int(length * shares["patch"]))]:
            step = self._workflow_step(doc)
            if step:
                requests.append(step[0])
                self.planned[doc["id"]] = step[1]
        for group in self.assign_groups[:max(1, int(length * shares["assign"]))]:
            assignee = None if self.round % 2 else self.rng.choice(sorted(self.segmenters))
            requests.append(self._post_json("/api/batches/assign", {"ids": group, "assignee": assignee}))
        for index in range(max(4, int(length * shares["upload"]))):
            kind = index % 4
            existing = self.rng.choice(self.batch_ids)
            number = int(existing.rsplit("_", 1)[1])
            name = f"img_r{self.round:03d}_{index:03d}.pbm"
            if kind == 0:      # a lead uploads into a batch: linked at once
                requests.append(self._upload(f"soak/{name}", self._mask(index), self.lead, batch_id=existing))
            elif kind == 1:    # named by its path only: waits for a sync
                requests.append(self._upload(f"batch_{number:04d}/{name}", self._mask(index), self.lead))
            elif kind == 2:    # names a batch that does not exist yet: auto-create, then sync
                missing = self.max_number + 1 + self.rng.randrange(100)
                requests.append(self._upload(f"b{missing}/{name}", self._mask(index), self.lead))
            elif open_own:     # a segmenter uploads into their own open batch (it stays open this round)
                doc = self.rng.choice(open_own)
                requests.append(self._upload(name, self._mask(index), self.segmenters[doc["assignee"]],
                                             batch_id=doc["id"]))
        requests += [self._post_json("/api/sync-batch-files", {})
                     for _ in range(max(1, int(length * shares["sync"])))]
        requests += [self._post_json("/api/auto-create-batches", {"limit": 25})
                     for _ in range(max(1, int(length * shares["auto"])))]
        return requests

    # Reads

    def _cursor(self, base_url):
        """A real `next_cursor` for the cursor-paging reads."""
        import urllib.request

        request = urllib.request.Request(base_url + "/api/batches?per_page=20", headers=self.lead)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["next_cursor"]

    def reads(self, count, base_url):
        import db

        with self.app.app_context():
            ids = [str(d["_id"]) for d in db.mask_files().find({}, {"_id": 1}).limit(1000)]
        mask_ids = self.rng.sample(ids, min(50, len(ids)))
        cursor = self._cursor(base_url)
        statuses = ("pending", "assigned", "in_progress", "completed", "reviewed", "rejected")
        pages = max(1, len(self.batch_ids) // 50)
        kinds = list(READ_WEIGHTS)
        paths = []
        for kind in self.rng.choices(kinds, [READ_WEIGHTS[k] for k in kinds], k=count):
            if kind == "list":
                choice = self.rng.randrange(6)
                if choice == 0:
                    paths.append(f"/api/batches?per_page=50&page={self.rng.randint(1, pages)}")
                elif choice == 1:
                    paths.append(f"/api/batches?status={self.rng.choice(statuses)}&per_page=25")
                elif choice == 2:
                    paths.append(f"/api/batches?assignee={self.rng.choice(sorted(self.segmenters))}")
                elif choice == 3:
                    paths.append("/api/batches?assignee=none&per_page=100")
                elif choice == 4:
                    paths.append(f"/api/batches?q=batch_0{self.rng.randint(0, 3)}&page=2&per_page=20")
                else:
                    paths.append(f"/api/batches?per_page=20&after={cursor}" if cursor else "/api/batches")
            elif kind == "detail":
                paths.append(f"/api/batches/{self.rng.choice(self.batch_ids)}")
            elif kind == "metrics":
                paths.append("/api/metrics")
            elif kind == "check":
                paths.append("/api/check-mongo-files?limit=50")
            elif kind == "export":
                paths.append(self.rng.choice(["/api/export/batches.csv",
                                              f"/api/export/batches.csv?status={self.rng.choice(statuses)}"]))
            elif kind == "download" and mask_ids:
                paths.append(f"/api/masks/{self.rng.choice(mask_ids)}")
            else:
                paths.append("/api/jobs?limit=10")
        return [{"method": "GET", "path": path, "headers": self.lead} for path in paths]

    def plan(self, length, base_url):
        """This round's shuffled list of about `length` requests."""
        self.round += 1
        writes = self.writes(length)
        requests = writes + self.reads(max(0, length - len(writes)), base_url)
        self.rng.shuffle(requests)
        return requests

    def verify(self):
        """How many of this round's planned workflow steps are done (a step no client reached stays planned)."""
        import db

        if not self.planned:
            return 0
        with self.app.app_context():
            found = {d["id"]: d.get("status") for d in db.batches().find(
                {"id": {"$in": sorted(self.planned)}}, {"_id": 0, "id": 1, "status": 1})}
        done = sum(1 for batch_id, target in self.planned.items() if found.get(batch_id) == target)
        self.applied += done
        self.planned_total += len(self.planned)
        return done


# --- Memory -----------------------------------------------------------------------------

class MemorySampler(threading.Thread):
    """RSS of the Gunicorn master and of every worker process, every `interval` seconds."""

    def __init__(self, gunicorn, interval):
        super().__init__(daemon=True)
        self.gunicorn = gunicorn
        self.interval = interval
        self.stopping = threading.Event()
        self.started_at = time.monotonic()
        self.workers = {}     # pid -> {"first_seen", "last_seen", "samples": [rss MB, ...]}
        self.master = []

    def sample(self):
        now = time.monotonic() - self.started_at
        try:
            self.master.append(self.gunicorn.master().memory_info().rss / MB)
        except psutil.Error:
            pass
        for proc in self.gunicorn.workers_now():
            try:
                rss = proc.memory_info().rss / MB
            except psutil.Error:
                continue
            entry = self.workers.setdefault(proc.pid, {"first_seen": now, "samples": []})
            entry["last_seen"] = now
            entry["samples"].append(rss)

    def run(self):
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)
        self.sample()

    def generations(self):
        """One row per worker process, in the order they started."""
        rows = []
        for number, (pid, entry) in enumerate(sorted(self.workers.items(), key=lambda item: item[1]["first_seen"]), 1):
            samples = entry["samples"]
            rows.append({"generation": number, "pid": pid, "started_s": round(entry["first_seen"], 1),
                         "last_seen_s": round(entry["last_seen"], 1), "samples": len(samples),
                         "first_mb": round(samples[0], 1), "last_mb": round(samples[-1], 1),
                         "max_mb": round(max(samples), 1)})
        return rows


def memory_summary(sampler, settings):
    rows = sampler.generations()
    if not rows:
        return {"generations": [], "worker_processes": 0, "recycled": 0, "within_bound": False}
    peaks = [row["max_mb"] for row in rows]
    third = max(1, len(rows) // 3)
    early, late = statistics.median(peaks[:third]), statistics.median(peaks[-third:])
    slope = 0.0
    if len(rows) >= 3:
        xs = [row["started_s"] / 60 for row in rows]
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(peaks)
        spread = sum((x - mean_x) ** 2 for x in xs)
        if spread:
            slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, peaks)) / spread
    growth = late - early
    worst = max(peaks, default=0.0)
    return {
        "generations": rows,
        "worker_processes": len(rows),
        "recycled": max(0, len(rows) - settings.workers),
        "peak_median_first_third_mb": round(early, 1),
        "peak_median_last_third_mb": round(late, 1),
        "growth_mb": round(growth, 1),
        "peak_trend_mb_per_min": round(slope, 2),
        "max_worker_mb": round(worst, 1),
        "master_mb": {"first": round(sampler.master[0], 1), "last": round(sampler.master[-1], 1),
                      "max": round(max(sampler.master), 1)} if sampler.master else None,
        "bound": {"max_growth_mb": settings.max_growth_mb, "max_worker_mb": settings.max_worker_mb},
        "within_bound": growth <= settings.max_growth_mb and worst <= settings.max_worker_mb,
    }


# --- The app's request log ----------------------------------------------------------------

_ENDPOINTS = ((re.compile(r"^/api/batches/assign$"), "/api/batches/assign"),
              (re.compile(r"^/api/batches/.+"), "/api/batches/{id}"),
              (re.compile(r"^/api/masks/.+"), "/api/masks/{id}"),
              (re.compile(r"^/api/jobs/.+"), "/api/jobs/{id}"))


def endpoint(path):
    for pattern, name in _ENDPOINTS:
        if pattern.match(path):
            return name
    return path


def request_log(path):
    """(method, endpoint, status, duration_ms) of every request the app logged (logs.py's segdash.request lines)."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if '"segdash.request"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            found.append((record["method"], endpoint(record["path"]), int(record["status"]),
                          float(record.get("duration_ms") or 0.0)))
    return found


def endpoint_table(records):
    table = {}
    for method, name, status, duration in records:
        row = table.setdefault((method, name), {"n": 0, "statuses": {}, "durations": []})
        row["n"] += 1
        row["statuses"][status] = row["statuses"].get(status, 0) + 1
        row["durations"].append(duration)
    rows = []
    for (method, name), row in sorted(table.items(), key=lambda item: -item[1]["n"]):
        durations = sorted(row["durations"])
        expected = EXPECTED.get((method, name), set())
        rows.append({"method": method, "endpoint": name, "requests": row["n"],
                     "statuses": {str(k): v for k, v in sorted(row["statuses"].items())},
                     "unexpected": sum(n for status, n in row["statuses"].items() if status not in expected),
                     "p50_ms": load.percentile(durations, 0.50), "p95_ms": load.percentile(durations, 0.95)})
    return rows


def status_classes(statuses):
    classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    for status, n in statuses.items():
        key = f"{str(status)[0]}xx"
        classes[key] = classes.get(key, 0) + n
    return classes


# --- The run --------------------------------------------------------------------------------

def run(settings):
    """The whole soak; returns the results (a dict) with `passed`."""
    db_name = f"segdash_soak_{uuid.uuid4().hex[:8]}"
    log_dir = tempfile.mkdtemp(prefix="segdash-soak-")
    with servers.DatabaseServer(settings.mongo_uri) as database:
        app = make_app(database.uri, db_name)
        try:
            with app.app_context():
                built = datasets.build(Scale("soak", "soak", settings.batches, settings.masks, chunks=True,
                                             unlinked=False, baseline_sync_seconds=0.0))
            log(f"seeded {built['batches']} batches, {built['files']} mask files ({built['unlinked_files']} unlinked)")
            env = {"GUNICORN_THREADS": str(settings.threads),
                   "GUNICORN_MAX_REQUESTS": str(settings.max_requests),
                   "GUNICORN_MAX_REQUESTS_JITTER": str(settings.max_requests_jitter),
                   # One JSON line per request (method, path, status, duration): the per-endpoint figures.
                   "LOG_LEVEL": "INFO", "MEMORY_SAMPLE_RATE": "0", **settings.extra_env}
            gunicorn = servers.Gunicorn("app:app", database.uri, db_name, settings.workers, log_dir=log_dir,
                                        extra_env=env)
            with gunicorn, servers.JobRunner(database.uri, db_name, log_dir=log_dir):
                planner = Planner(app, settings, built["token"])
                results = _soak(settings, gunicorn, planner)
            records = request_log(gunicorn.log_path)
            results["gunicorn_log"] = gunicorn.log_path
            with app.app_context():
                import db

                results["database"] = database.describe(db.client())["text"]
        finally:
            with app.app_context():
                import db

                db.client().drop_database(db_name)
    results["endpoints"] = endpoint_table(records)
    results["server_logged_requests"] = len(records)
    results["unexpected"] = sum(row["unexpected"] for row in results["endpoints"])
    results["conflicts"] = {f"{row['method']} {row['endpoint']}": row["statuses"].get("409", 0)
                            for row in results["endpoints"] if row["statuses"].get("409")}
    durations = sorted(d for _m, _e, _s, d in records)
    results["server_p50_ms"] = load.percentile(durations, 0.50)
    results["server_p95_ms"] = load.percentile(durations, 0.95)
    failures = []
    if results["classes"]["5xx"]:
        failures.append(f"{results['classes']['5xx']} answers were 5xx")
    if results["transport_errors"]:
        failures.append(f"{results['transport_errors']} requests got no answer")
    if results["unexpected"]:
        failures.append(f"{results['unexpected']} answers were not the planned ones")
    if not results["memory"]["within_bound"]:
        failures.append("worker memory beyond the bound")
    results["failures"] = failures
    results["passed"] = not failures
    if results["passed"]:
        shutil.rmtree(log_dir, ignore_errors=True)
        results["gunicorn_log"] = None
    return results


def _soak(settings, gunicorn, planner):
    sampler = MemorySampler(gunicorn, settings.sample_seconds)
    sampler.start()
    began = time.monotonic()
    rounds, statuses = [], {}
    per_thread = 60  # first round's guess of the requests one client makes in a round
    try:
        while True:
            left = settings.seconds - (time.monotonic() - began)
            if left < 3:
                break
            seconds = min(settings.round_seconds, left)
            # Three times one client's share of the round: the clients start at different
            # places in the list (bench.load), so together they still reach nearly all of it.
            length = 3 * per_thread * seconds / settings.round_seconds
            plan = planner.plan(int(min(3000, max(60, length))), gunicorn.base)
            result = load.run(gunicorn.base, plan, clients=settings.clients, processes=settings.client_processes,
                              max_requests=10 ** 7, max_seconds=seconds, timeout=120.0)
            applied = planner.verify()
            per_thread = max(20, result["requests"] // settings.clients)
            for status, n in result["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
            rounds.append({"round": planner.round, "plan": len(plan), "requests": result["requests"],
                           "seconds": round(result["seconds"], 1), "statuses": result["statuses"],
                           "errors_without_answer": result["errors"] - sum(
                               n for s, n in result["statuses"].items() if s != "200"),
                           "reconnects": result["reconnects"], "p50_ms": result["p50_ms"], "p95_ms": result["p95_ms"],
                           "workflow_steps": f"{applied}/{len(planner.planned)}",
                           "workers_seen": len(sampler.workers)})
            log(f"round {planner.round}: {result['requests']} requests in {result['seconds']:.1f}s, "
                f"{dict(sorted(result['statuses'].items()))}, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
                f"steps {applied}/{len(planner.planned)}, worker processes so far {len(sampler.workers)}")
    finally:
        sampler.stop()
    elapsed = time.monotonic() - began
    total = sum(statuses.values())
    return {
        "settings": asdict(settings),
        "seconds": round(elapsed, 1),
        "requests": total,
        "rps": round(total / elapsed, 1) if elapsed else 0.0,
        "statuses": dict(sorted(statuses.items())),
        "classes": status_classes(statuses),
        "transport_errors": sum(r["errors_without_answer"] for r in rounds),
        "reconnects": sum(r["reconnects"] for r in rounds),
        "rounds": rounds,
        "client_p50_ms": {"min": min(r["p50_ms"] or 0 for r in rounds), "max": max(r["p50_ms"] or 0 for r in rounds)}
        if rounds else None,
        "client_p95_ms": {"min": min(r["p95_ms"] or 0 for r in rounds), "max": max(r["p95_ms"] or 0 for r in rounds)}
        if rounds else None,
        "workflow_steps": {"applied": planner.applied, "planned": planner.planned_total},
        "memory": memory_summary(sampler, settings),
    }


def print_summary(results):
    s = results["settings"]
    m = results["memory"]
    print()
    print(f"SegDash soak: {results['seconds']:.0f} s, {s['clients']} clients, {s['workers']} gthread workers x "
          f"{s['threads']} threads, max_requests={s['max_requests']} (+{s['max_requests_jitter']} jitter), "
          f"database {results['database']}")
    c = results["classes"]
    print(f"requests: {results['requests']} ({results['rps']}/s): 2xx {c['2xx']}, 3xx {c['3xx']}, 4xx {c['4xx']}, "
          f"5xx {c['5xx']}; without an answer {results['transport_errors']} (reconnects {results['reconnects']})")
    print(f"409 (expected: overlapping jobs, simultaneous identical changes): {results['conflicts'] or 'none'}")
    print(f"unexpected answers: {results['unexpected']}; workflow steps done {results['workflow_steps']['applied']}"
          f" of {results['workflow_steps']['planned']} planned (the rest were reached by no client in their round)")
    print(f"latency: server p50 {results['server_p50_ms']} ms, p95 {results['server_p95_ms']} ms (all requests); "
          f"client p50 {results['client_p50_ms']['min']}-{results['client_p50_ms']['max']} ms, "
          f"p95 {results['client_p95_ms']['min']}-{results['client_p95_ms']['max']} ms (range over rounds)")
    print(f"{'endpoint':38} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7}  statuses")
    for row in results["endpoints"]:
        print(f"{row['method'] + ' ' + row['endpoint']:38} {row['requests']:>8} {row['p50_ms']:>7} {row['p95_ms']:>7}"
              f"  {row['statuses']}")
    print(f"worker processes: {m['worker_processes']} ({m['recycled']} replacements by recycling); "
          f"master RSS {m['master_mb']}")
    shown = m["generations"] if len(m["generations"]) <= 12 else m["generations"][:6] + m["generations"][-6:]
    print(f"{'gen':>4} {'pid':>7} {'start s':>8} {'samples':>7} {'first MB':>9} {'last MB':>8} {'max MB':>7}")
    for row in shown:
        print(f"{row['generation']:>4} {row['pid']:>7} {row['started_s']:>8} {row['samples']:>7} "
              f"{row['first_mb']:>9} {row['last_mb']:>8} {row['max_mb']:>7}")
    print(f"worker peak RSS: first-third median {m['peak_median_first_third_mb']} MB, last-third median "
          f"{m['peak_median_last_third_mb']} MB (growth {m['growth_mb']:+} MB, "
          f"bound {m['bound']['max_growth_mb']} MB); "
          f"trend {m['peak_trend_mb_per_min']:+} MB/min; largest {m['max_worker_mb']} MB "
          f"(bound {m['bound']['max_worker_mb']} MB)")
    print("PASS" if results["passed"] else "FAIL: " + "; ".join(results["failures"]))
    if results.get("gunicorn_log"):
        print(f"Gunicorn log kept: {results['gunicorn_log']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=Settings.workers)
    parser.add_argument("--clients", type=int, default=Settings.clients)
    parser.add_argument("--max-requests", type=int, default=Settings.max_requests)
    parser.add_argument("--max-requests-jitter", type=int, default=Settings.max_requests_jitter)
    parser.add_argument("--round-seconds", type=float, default=Settings.round_seconds)
    parser.add_argument("--batches", type=int, default=Settings.batches)
    parser.add_argument("--masks", type=int, default=Settings.masks)
    parser.add_argument("--max-growth-mb", type=float, default=Settings.max_growth_mb)
    parser.add_argument("--max-worker-mb", type=float, default=Settings.max_worker_mb)
    parser.add_argument("--mongo-uri", help="use this server instead of starting one")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    # Importing `app` builds a module-level app: give it a key so it does not warn.
    os.environ.setdefault("SECRET_KEY", "segdash-bench")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    settings = Settings(seconds=args.minutes * 60, workers=args.workers, clients=args.clients,
                        max_requests=args.max_requests, max_requests_jitter=args.max_requests_jitter,
                        round_seconds=args.round_seconds, batches=args.batches, masks=args.masks,
                        max_growth_mb=args.max_growth_mb, max_worker_mb=args.max_worker_mb,
                        mongo_uri=args.mongo_uri)
    results = run(settings)
    print_summary(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
