"""Prometheus metrics, and `GET /metrics` that exports them, correct across Gunicorn workers.

Under Gunicorn, gunicorn_config.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory
before the app is loaded, so prometheus_client runs in multiprocess mode: each worker
writes its samples to its own memory-mapped files there, and `/metrics` (answered by
whichever worker gets the scrape) adds up the files of all workers, live and dead. When a
worker exits, Gunicorn's `child_exit` hook calls `multiprocess.mark_process_dead`, which
deletes that worker's memory gauge; its counters and histograms stay, so totals never
go backwards. Without PROMETHEUS_MULTIPROC_DIR (the Flask test client, a lone process)
the metrics live in this process's default registry.

Exported (besides the `process_*`/`python_*` ones of a single process):
- segdash_http_request_duration_seconds{endpoint, method, status}: histogram per Flask
  URL rule (`/api/batches/<path:raw_id>`, `unmatched` when no rule matched: 404, 405),
  never the raw path;
- segdash_cache_hits_total{cache}, segdash_cache_misses_total{cache}: cache.py's caches;
- segdash_db_commands_total{command}, segdash_db_command_failures_total{command}:
  database round trips by command name (find, aggregate, update …);
- segdash_worker_memory_bytes{type="rss"|"vms", pid}: each live worker's memory, set at
  worker start, on each scrape (the scraping worker) and at most every 5 s while serving;
- segdash_job_duration_seconds{kind, state}: sync/auto-create run time by outcome
  (state `done` or `failed`; its `_count` is the number of runs).
"""
import os
import threading
import time

import psutil
from flask import Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pymongo import monitoring

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MEMORY_GAUGE_INTERVAL = 5.0
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

if os.environ.get(MULTIPROC_ENV):
    # prometheus_client writes there as soon as a labelled value exists (even for the
    # flask CLI when the variable comes from .env): make sure the directory does.
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

REQUEST_DURATION = Histogram(
    "segdash_http_request_duration_seconds",
    "Time to answer an HTTP request, by Flask URL rule, method and status.",
    ["endpoint", "method", "status"])
CACHE_HITS = Counter("segdash_cache_hits", "Cache lookups that found a value.", ["cache"])
CACHE_MISSES = Counter("segdash_cache_misses", "Cache lookups that found nothing.", ["cache"])
DB_COMMANDS = Counter("segdash_db_commands", "Database commands sent (round trips), by command name.",
                      ["command"])
DB_COMMAND_FAILURES = Counter("segdash_db_command_failures", "Database commands that failed, by command name.",
                              ["command"])
WORKER_MEMORY = Gauge("segdash_worker_memory_bytes", "Memory of each live worker process (rss, vms).",
                      ["type"], multiprocess_mode="liveall")
JOB_DURATION = Histogram(
    "segdash_job_duration_seconds", "Run time of sync and auto-create jobs, by kind and outcome.",
    ["kind", "state"], buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf")))


def multiprocess_mode():
    return bool(os.environ.get(MULTIPROC_ENV))


def registry():
    """What `/metrics` exports: every worker's files in multiprocess mode, else this process."""
    if not multiprocess_mode():
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected


class DbCommandCounter(monitoring.CommandListener):
    """pymongo command monitoring → round trips by command name (db.py registers it on its clients)."""

    def started(self, event):
        DB_COMMANDS.labels(event.command_name).inc()

    def succeeded(self, event):
        pass

    def failed(self, event):
        DB_COMMAND_FAILURES.labels(event.command_name).inc()


db_command_listener = DbCommandCounter()

_memory_lock = threading.Lock()
_memory_state = {"pid": None, "process": None, "at": 0.0}


def record_memory():
    """Set this process's memory gauge now."""
    with _memory_lock:
        pid = os.getpid()
        if _memory_state["pid"] != pid:
            _memory_state.update(pid=pid, process=psutil.Process(pid))
        _memory_state["at"] = time.monotonic()
        info = _memory_state["process"].memory_info()
    WORKER_MEMORY.labels("rss").set(info.rss)
    WORKER_MEMORY.labels("vms").set(info.vms)


def _refresh_memory():
    if time.monotonic() - _memory_state["at"] >= MEMORY_GAUGE_INTERVAL or _memory_state["pid"] != os.getpid():
        record_memory()


def observe_job(kind, state, started_at, finished_at):
    JOB_DURATION.labels(kind, state).observe(max(0.0, (finished_at - started_at).total_seconds()))


def endpoint_label():
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def metrics_view():
    record_memory()
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def init_app(app):
    """Time every request, keep the memory gauge fresh, and serve `GET /metrics`."""

    @app.before_request
    def start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe_request(response):
        started = g.pop("metrics_started", None)
        if started is not None:
            method = request.method if request.method in METHODS else "other"
            REQUEST_DURATION.labels(endpoint_label(), method, str(response.status_code)).observe(
                time.perf_counter() - started)
        _refresh_memory()
        return response

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
