"""Requests people wait on, at the largest scale: team figures under writes, uncached list
pages and searches, search interference, and a "day in the life" through Gunicorn (bench/day.py).

Each measurement sits beside the shape it replaced, measured in the same run:
- team figures: the old pipeline (every batch loaded and counted, no cache), in-process;
- list pages: an open range `number > x` with a limit against a bounded range, and an
  unanchored case-insensitive regex against the search keys, sent directly with pymongo.

Everything is bounded in time; the HTTP clients only talk to 127.0.0.1.
"""
import random
import threading
import time

import requests

from bench import baseline, load, profiling, servers
from bench.counting import COUNTER, classify

SEARCH_TERMS = ("scene 001", "scene 12", "scene", "batch_012", "b7", "0042", "zzz-none")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def stats(latencies_ms):
    values = sorted(latencies_ms)
    return {"n": len(values), "p50_ms": load.percentile(values, 0.5), "p95_ms": load.percentile(values, 0.95),
            "max_ms": values[-1] if values else None}


class Client:
    """One keep-alive HTTP client that records (label, status, ms) of every request."""

    def __init__(self, base, token, timeout=120.0):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"
        self.timeout = timeout
        self.records = []  # (label, status or None, ms)

    def call(self, label, method, path, **kwargs):
        began = time.perf_counter()
        try:
            response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
            status = response.status_code
        except requests.RequestException:
            response, status = None, None
        self.records.append((label, status, (time.perf_counter() - began) * 1000.0))
        return response

    def close(self):
        self.session.close()


def profiled(server, db_pid, seconds, run_load):
    """py-spy on the database server and on the Gunicorn workers while `run_load(seconds)` runs
    (a separate run from the measured one: sampling costs CPU on a small machine)."""
    spies = {}
    window = seconds + 3  # the load's clients start 1.5-2 s after it is called (bench/load.py)
    if db_pid:
        spies["database"] = profiling.PySpy(db_pid, window).start()
    spies["workers"] = profiling.PySpy(server.process.pid, window, subprocesses=True).start()
    time.sleep(1.0)  # let py-spy attach before the load starts
    run = run_load(seconds)
    out = {name: spy.finish() for name, spy in spies.items()}
    out["load"] = {k: run.get(k) for k in ("requests", "rps", "p50_ms", "p95_ms")}
    return out


# ------------------------------------------------------------------ 1. team figures under writes


class Writer:
    """Writes through the API on a fixed schedule, one every `interval` seconds, whatever each takes.

    A write waits for no earlier one (up to `max_in_flight` at once; a write due while that many
    are still open is counted as skipped). Each write assigns a pending batch to a segmenter or,
    on the next pass over the batches, unassigns it again: one batch is written again only after
    every other, so writes in flight never race on one batch.
    """

    def __init__(self, base, token, batch_ids, interval, max_in_flight=16):
        self.base, self.token, self.batch_ids, self.interval = base, token, batch_ids, interval
        self.max_in_flight = max_in_flight
        self.records, self.skipped, self.seconds = [], 0, None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stop = threading.Event()
        self._threads = []
        self._in_flight = 0
        self._scheduler = threading.Thread(target=self._schedule)

    def _write(self, turn):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(self.base, self.token)
        batch_id = self.batch_ids[turn % len(self.batch_ids)]
        body = {"assignee": "alice"} if (turn // len(self.batch_ids)) % 2 == 0 else {"assignee": None}
        client.call("PATCH /api/batches/<id> (assignee)", "PATCH", f"/api/batches/{batch_id}", json=body)
        with self._lock:
            self.records.append(client.records.pop())
            self._in_flight -= 1

    def _schedule(self):
        turn = 0
        next_at = time.perf_counter()
        while not self._stop.is_set():
            with self._lock:
                busy = self._in_flight >= self.max_in_flight
                if not busy:
                    self._in_flight += 1
            if busy:
                self.skipped += 1
            else:
                thread = threading.Thread(target=self._write, args=(turn,))
                thread.start()
                self._threads.append(thread)
                turn += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def __enter__(self):
        self._began = time.perf_counter()
        self._scheduler.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._scheduler.join()
        for thread in self._threads:
            thread.join()
        self.seconds = time.perf_counter() - self._began

    def summary(self):
        return {**stats([ms for _l, _s, ms in self.records]), "statuses": _statuses(self.records),
                "per_s": len(self.records) / self.seconds if self.seconds else None, "skipped": self.skipped,
                "max_in_flight": self.max_in_flight}


def metrics_under_writes(app, uri, db_name, token, prof, logs, db_pid=None):
    """16 clients on /api/metrics while one client writes every 100 ms; the old pipeline beside it."""
    import dashboard_stats
    import db

    out = {"clients": prof.clients, "workers": prof.wait_workers, "write_interval_s": prof.wait_write_interval}
    with app.app_context():
        database = db.database()
        pending = [d["id"] for d in db.batches().find({"status": "pending"}, {"_id": 0, "id": 1}).limit(60)]
        samples = []
        for _ in range(prof.wait_baseline_samples):
            began = time.perf_counter()
            baseline.metrics_no_cache(database)
            samples.append((time.perf_counter() - began) * 1000.0)
        out["baseline_no_cache"] = stats(samples)
        samples = []
        for _ in range(prof.wait_baseline_samples):
            began = time.perf_counter()
            dashboard_stats._compute()
            samples.append((time.perf_counter() - began) * 1000.0)
        out["segdash_compute"] = stats(samples)
    if not pending:
        out["error"] = "no pending batch to write to"
        return out
    headers = {"Authorization": f"Bearer {token}"}
    log(f"wait: /api/metrics, {prof.clients} clients + 1 write every {prof.wait_write_interval * 1000:.0f} ms")
    with servers.Gunicorn("app:app", uri, db_name, prof.wait_workers, log_dir=logs) as server:
        load.run(server.base, ["/api/metrics"], headers, clients=prof.wait_workers * 2, processes=1,
                 max_requests=prof.wait_workers * 6, max_seconds=30.0, timeout=60.0)

        def metrics_load(seconds):
            return load.run(server.base, ["/api/metrics"], headers, clients=prof.clients,
                            processes=prof.client_processes, max_requests=10 ** 7, max_seconds=seconds,
                            timeout=60.0)

        with Writer(server.base, token, pending, prof.wait_write_interval) as writer:
            out["load"] = metrics_load(prof.wait_metrics_seconds)
        out["writes"] = writer.summary()
        log("wait: profiles of /api/metrics under writes (py-spy)")
        with Writer(server.base, token, pending, prof.wait_write_interval):
            out["profiles"] = profiled(server, db_pid, prof.profile_seconds, metrics_load)
        # Put the batches back as they were (pending, unassigned).
        with app.app_context():
            assigned = [d["id"] for d in db.batches().find({"id": {"$in": pending}, "assignee": "alice"},
                                                            {"_id": 0, "id": 1})]
        cleanup = Client(server.base, token)
        for batch_id in assigned:
            cleanup.call("cleanup", "PATCH", f"/api/batches/{batch_id}", json={"assignee": None})
        cleanup.close()
    return out


def _statuses(records):
    out = {}
    for _label, status, _ms in records:
        out[str(status)] = out.get(str(status), 0) + 1
    return out


# ------------------------------------------------------------------ 2. uncached list pages


def list_cases(segmenter):
    """(label, query string) of every sort (both orders) and the main filters."""
    import batch_service

    cases = [(f"sort={s}", f"sort={s}") for s in batch_service.SORTS]
    cases += [("status=assigned", "status=assigned"), ("status=completed", "status=completed"),
              (f"assignee={segmenter}", f"assignee={segmenter}"), ("assignee=none", "assignee=none"),
              (f"assignee={segmenter}&status=in_progress", f"assignee={segmenter}&status=in_progress")]
    cases += [(f"q={t}", "q=" + requests.utils.quote(t)) for t in SEARCH_TERMS]
    return cases


def _explain(database, query, sort, skip, limit, projection):
    """Keys and documents the server examined for one find (None where it does not say)."""
    try:
        reply = database.command("explain", {"find": "batches", "filter": query, "sort": dict(sort), "skip": skip,
                                             "limit": limit, "projection": projection},
                                 verbosity="executionStats")
    except Exception as exc:  # a server without explain is reported, not fatal
        return {"error": f"{exc.__class__.__name__}: {str(exc)[:120]}"}
    execution = reply.get("executionStats") or {}
    plan = (reply.get("queryPlanner") or {}).get("winningPlan") or {}
    return {"docs_examined": execution.get("totalDocsExamined"), "keys_examined": execution.get("totalKeysExamined"),
            "returned": execution.get("nReturned"), "plan": _plan_names(plan)}


def _plan_names(plan):
    names = []
    while isinstance(plan, dict) and plan:
        stage = plan.get("stage")
        if stage:
            names.append(stage + (f"({plan['indexName']})" if plan.get("indexName") else ""))
        plan = plan.get("inputStage") or (plan.get("inputStages") or [None])[0]
    return " ← ".join(names) or None


def uncached_lists(app, token, prof, segmenter):
    """p50/p95 of /api/batches per case with the page and count caches emptied before every request."""
    import batch_service

    caches = app.extensions["segdash_caches"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    per_page = 50
    rows = []
    with app.app_context():
        import db

        database = db.database()
        db_name = database.name
        client.get("/api/batches?per_page=1", headers=headers)  # the token lookup, cached
        for label, qs in list_cases(segmenter):
            times, docs, n_data, statuses = [], [], [], {}
            for i in range(prof.wait_list_samples):
                page = prof.wait_list_pages[i % len(prof.wait_list_pages)]
                caches.counts.clear()
                caches.pages.clear()
                COUNTER.clear()
                began = time.perf_counter()
                response = client.get(f"/api/batches?per_page={per_page}&page={page}&{qs}", headers=headers)
                times.append((time.perf_counter() - began) * 1000.0)
                summary = classify(COUNTER.snapshot(), db_name)
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                find = [c for c in summary["commands"] if c["label"] == "find:batches"]
                docs.append(sum(c["docs"] for c in find))
                n_data.append(summary["n_data"])
            params = dict(requests.utils.unquote(part).split("=", 1) for part in qs.split("&"))
            query = batch_service.list_filter(status=params.get("status"), assignee=params.get("assignee"),
                                              q=params.get("q"))
            sort = batch_service.sort_spec(params.get("sort", batch_service.DEFAULT_SORT))
            explains = {}
            for page in (prof.wait_list_pages[0], prof.wait_list_pages[-1]):
                explains[str(page)] = _explain(database, query, sort, (page - 1) * per_page, per_page,
                                          batch_service.LIST_FIELDS)
            rows.append({"case": label, **stats(times), "statuses": statuses, "docs_returned_max": max(docs),
                         "data_round_trips_max": max(n_data), "explain": explains,
                         "total": database.batches.count_documents(query)})
    return {"per_page": per_page, "pages": list(prof.wait_list_pages), "samples": prof.wait_list_samples,
            "rows": rows}


def shape_baselines(app, prof):
    """The old shapes beside the current ones, sent directly with pymongo (no app in between)."""
    import db
    import search

    rng = random.Random(5)
    out = {}
    with app.app_context():
        database = db.database()
        batches = database.batches
        top = (batches.find_one({}, {"number": 1}, sort=[("number", -1)]) or {}).get("number") or 0

        def timed(name, make_query, sort, explain_query=None):
            times, returned = [], []
            for _ in range(prof.wait_shape_samples):
                query = make_query()
                began = time.perf_counter()
                docs = list(batches.find(query, {"_id": 0, "id": 1}).sort(sort).limit(50))
                times.append((time.perf_counter() - began) * 1000.0)
                returned.append(len(docs))
            query = explain_query or make_query()
            out[name] = {**stats(times), "returned_max": max(returned),
                         "explain": _explain(database, query, sort, 0, 50, {"_id": 0, "id": 1})}

        starts = [rng.randint(0, max(0, top - 50)) for _ in range(prof.wait_shape_samples)]
        it = iter(starts * 2)
        timed("open_range", lambda: {"number": {"$gt": next(it)}}, [("number", 1)], {"number": {"$gt": starts[0]}})
        it2 = iter(starts * 2)

        def bounded():
            x = next(it2)
            return {"number": {"$gt": x, "$lte": x + 50}}

        timed("bounded_range", bounded, [("number", 1)], {"number": {"$gt": starts[0], "$lte": starts[0] + 50}})
        for term in ("scene 001", "0042"):
            pattern = {"$regex": term.replace(" ", r"\s"), "$options": "i"}
            regex = {"$or": [{"id": pattern}, {"name": pattern}]}
            timed(f"regex:{term}", lambda r=regex: r, [("number", 1)])
            keys = search.query(term)
            timed(f"search_keys:{term}", lambda k=keys: k, [("number", 1)])
    out["top_number"] = top
    return out


# ------------------------------------------------------------------ 3. search interference


def search_terms(count, seed=3):
    """Distinct search strings (so that few are served from a page cache)."""
    rng = random.Random(seed)
    terms = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            terms.append(f"scene {rng.randint(0, 2999):04d}"[:rng.randint(7, 10)])
        elif kind == 1:
            terms.append(f"batch_{rng.randint(0, 2999):04d}"[:rng.randint(7, 10)])
        elif kind == 2:
            terms.append(str(rng.randint(1, 25000)))
        else:
            terms.append(f"Scene {rng.randint(0, 99):02d}")
    return [f"/api/batches?per_page=50&q={requests.utils.quote(t)}" for t in terms]


def search_interference(uri, db_name, token, probe_path, prof, logs, db_pid=None):
    """An unrelated cached request's latency alone, then beside a dozen clients searching."""
    headers = {"Authorization": f"Bearer {token}"}
    out = {"probe": probe_path, "searchers": prof.wait_searchers, "workers": prof.wait_workers,
           "seconds": prof.wait_interference_seconds}
    log(f"wait: search interference ({prof.wait_searchers} searchers, probe {probe_path})")
    # Searches count against a per-user limit of expensive requests: lifted here, so that
    # what is measured is the searches' cost, not 429s.
    with servers.Gunicorn("app:app", uri, db_name, prof.wait_workers, log_dir=logs,
                          extra_env={"EXPENSIVE_RATE_LIMIT": "1000000 per minute"}) as server:
        load.run(server.base, [probe_path], headers, clients=prof.wait_workers * 2, processes=1,
                 max_requests=prof.wait_workers * 6, max_seconds=30.0, timeout=60.0)
        out["idle"] = load.run(server.base, [probe_path], headers, clients=1, processes=1, max_requests=10 ** 6,
                               max_seconds=prof.wait_interference_seconds, timeout=60.0)
        searches = {}

        def searchers():
            searches["load"] = load.run(server.base, search_terms(3000), headers, clients=prof.wait_searchers,
                                        processes=2, max_requests=10 ** 7,
                                        max_seconds=prof.wait_interference_seconds + 2.0, timeout=60.0)

        thread = threading.Thread(target=searchers)
        thread.start()
        time.sleep(1.0)  # the searchers start first: the probe runs wholly beside them
        out["loaded"] = load.run(server.base, [probe_path], headers, clients=1, processes=1, max_requests=10 ** 6,
                                 max_seconds=prof.wait_interference_seconds, timeout=60.0)
        thread.join()
        out["searches"] = searches.get("load")
        log("wait: profiles of the searchers (py-spy)")
        out["profiles"] = profiled(server, db_pid, prof.profile_seconds, lambda seconds: load.run(
            server.base, search_terms(3000, seed=4), headers, clients=prof.wait_searchers, processes=2,
            max_requests=10 ** 7, max_seconds=seconds, timeout=60.0))
    return out


# ------------------------------------------------------------------ all of it


def run(app, uri, lead_token, prof, logs, db_pid=None):
    """Every measurement above on `app`'s database (the largest scale). Needs the benchmark's lead token."""
    import auth
    import cache
    import db
    import seed
    from bench import day  # it builds on this module's client

    db_name = app.config["MONGO_DB"]
    out = {"sections_seconds": {}}
    with app.app_context():
        segmenter_tokens = {name: auth.create_token(name) for name in seed.SEGMENTERS}
        probe = db.batches().find_one({}, {"_id": 0, "id": 1}, sort=[("number", 1)])["id"]
        out["batches"] = db.batches().estimated_document_count()
        out["files"] = db.mask_files().estimated_document_count()
        cache.record_write()

    def section(name, function, *args):
        began = time.perf_counter()
        try:
            out[name] = function(*args)
        except Exception as exc:  # one broken section must not lose the others
            out[name] = {"error": f"{exc.__class__.__name__}: {str(exc)[:300]}"}
            log(f"wait: {name} failed: {out[name]['error']}")
        out["sections_seconds"][name] = time.perf_counter() - began

    log("wait: uncached list pages and searches (in-process, caches emptied before each request)")
    section("lists", uncached_lists, app, lead_token, prof, seed.SEGMENTERS[0])
    log("wait: old list shapes with pymongo (open range, unanchored regex)")
    section("shapes", shape_baselines, app, prof)
    section("metrics", metrics_under_writes, app, uri, db_name, lead_token, prof, logs, db_pid)
    section("interference", search_interference, uri, db_name, lead_token, f"/api/batches/{probe}", prof, logs,
            db_pid)
    section("day", day.day_in_the_life, app, uri, db_name, lead_token, segmenter_tokens, prof, logs)
    return out
