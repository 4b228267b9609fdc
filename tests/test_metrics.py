"""GET /metrics: Prometheus text, summed over Gunicorn workers, cleaned up when workers die.

Most tests run a real Gunicorn with two workers (prometheus_client multiprocess mode, as
set up by gunicorn_config.py); a few use the Flask test client (one process, the default
registry). The alert rules in ops/alerts.yml must only name metrics /metrics exports.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from gunicorn_server import GunicornServer, drop_database, label_values, parse_metrics, prepare_database, value
from helpers import ROOT
from runner_process import RunnerProcess

REQUESTS = "segdash_http_request_duration_seconds_count"
MEMORY = "segdash_worker_memory_bytes"


@pytest.fixture(scope="module")
def served(mongo_uri, tmp_path_factory):
    """One Gunicorn (2 workers) and a job runner for the module, sharing one metrics directory
    as start_optimized.sh sets them up; their database, and a lead's Bearer header."""
    db_name = f"segdash_metrics_{uuid.uuid4().hex[:8]}"
    lead = prepare_database(mongo_uri, db_name)
    metrics_dir = str(tmp_path_factory.mktemp("metrics"))
    server = GunicornServer(mongo_uri, db_name, workers=2, PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    runner = RunnerProcess(mongo_uri, db_name, PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    yield server, lead
    runner.close()
    server.close()
    drop_database(mongo_uri, db_name)


def spread(server, send, pids_wanted=2, rounds=20, per_round=16):
    """Send requests concurrently until the request log shows `pids_wanted` workers served them.

    `send()` makes one request and returns its X-Request-ID. Returns the number sent.
    """
    sent, ids = 0, set()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(rounds):
            ids.update(pool.map(lambda _i: send(), range(per_round)))
            sent += per_round
            served_by = {line["pid"] for line in server.json_lines()
                         if line.get("logger") == "segdash.request" and line.get("request_id") in ids}
            if len(served_by) >= pids_wanted:
                return sent, served_by
    pytest.fail(f"requests never reached {pids_wanted} workers (served by {served_by})")


@pytest.mark.system
def test_request_and_database_counts_add_up_across_workers(served):
    server, lead = served
    before = server.scrape()

    def list_batches():
        response = server.get("/api/batches", headers=lead)
        assert response.status_code == 200
        return response.headers["X-Request-ID"]

    sent, served_by = spread(server, list_batches)
    assert served_by <= set(server.workers())
    probes = 7
    for _ in range(probes):
        assert server.get("/healthz").status_code == 200
    after = server.scrape()

    labels = {"endpoint": "/api/batches", "method": "GET", "status": "200"}
    assert value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels) == sent
    assert (value(after, "segdash_http_request_duration_seconds_bucket", le="+Inf", **labels)
            - value(before, "segdash_http_request_duration_seconds_bucket", le="+Inf", **labels)) == sent
    healthz = {"endpoint": "/healthz", "method": "GET", "status": "200"}
    assert value(after, REQUESTS, **healthz) - value(before, REQUESTS, **healthz) == probes
    # Each /healthz sends one ping; nothing else does.
    ping = "segdash_db_commands_total"
    assert value(after, ping, command="ping") - value(before, ping, command="ping") == probes
    assert value(after, ping, command="find") > value(before, ping, command="find")
    # Each authenticated request looks its token up in the users cache once.
    lookups = sum(value(after, f"segdash_cache_{kind}_total", cache="users")
                  - value(before, f"segdash_cache_{kind}_total", cache="users") for kind in ("hits", "misses"))
    assert lookups == sent
    # Raw paths never become label values.
    assert all("batch_" not in endpoint for endpoint in label_values(after, REQUESTS, "endpoint"))


@pytest.mark.system
def test_memory_gauge_per_live_worker(served):
    server, _lead = served
    samples = server.scrape()
    assert label_values(samples, MEMORY, "pid", type="rss") == {str(pid) for pid in server.workers()}
    for pid in server.workers():
        rss = value(samples, MEMORY, type="rss", pid=str(pid))
        assert 10 * 1024 * 1024 < rss < 2 * 1024 ** 3
        assert value(samples, MEMORY, type="vms", pid=str(pid)) >= rss
    assert str(server.pid) not in label_values(samples, MEMORY, "pid")


@pytest.mark.system
def test_job_durations_and_outcomes(served):
    server, lead = served
    before = server.scrape()
    for _ in range(2):
        response = server.post("/api/sync-batch-files?wait=30", headers=lead)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "done"
    after = server.scrape()
    done = {"kind": "sync", "state": "done"}
    name = "segdash_job_duration_seconds_count"
    assert value(after, name, **done) - value(before, name, **done) == 2
    assert value(after, "segdash_job_duration_seconds_sum", **done) >= value(
        before, "segdash_job_duration_seconds_sum", **done)


@pytest.mark.system
def test_alert_rules_parse_and_name_exported_metrics(served):
    server, lead = served
    # Make every metric family have samples: a request, cache lookups, a job.
    assert server.get("/api/batches", headers=lead).status_code == 200
    assert server.post("/api/sync-batch-files?wait=30", headers=lead).status_code == 200
    exported = {name for name, _labels in server.scrape()}

    with open(os.path.join(ROOT, "ops", "alerts.yml"), encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"SegDashSlowRequests", "SegDashLowCacheHitRate", "SegDashWorkerMemoryHigh"} <= names
    for rule in alerts:
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
    if shutil.which("promtool"):  # Prometheus's own check, where it is installed
        result = subprocess.run(["promtool", "check", "rules", os.path.join(ROOT, "ops", "alerts.yml")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "rate", "irate", "increase", "histogram_quantile", "bool", "offset",
    "quantile", "topk", "bottomk", "abs", "clamp_min", "clamp_max", "sum_over_time", "avg_over_time",
    "max_over_time", "time", "vector", "scalar", "absent", "inf", "nan",
}


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers less label matchers, groupings and functions."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                       # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                      # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {word for word in words if word.lower() not in PROMQL_WORDS}


def test_metric_name_extraction():
    expr = ('histogram_quantile(0.95, sum by (le, endpoint) (rate(a_bucket{endpoint!~"/x.*"}[5m]))) > 1 '
            'and on() sum(rate(b_total[1m])) > 0')
    assert metric_names(expr) == {"a_bucket", "b_total"}


@pytest.mark.system
def test_killed_worker_leaves_the_gauge_and_totals_stay(mongo_uri):
    db_name = f"segdash_metrics_{uuid.uuid4().hex[:8]}"
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2)
    try:
        def list_batches():
            response = server.get("/api/batches", headers=lead)
            assert response.status_code == 200
            return response.headers["X-Request-ID"]

        sent, served_by = spread(server, list_batches)
        labels = {"endpoint": "/api/batches", "method": "GET", "status": "200"}
        before = server.scrape()
        assert value(before, REQUESTS, **labels) == sent
        old_workers = server.workers()
        assert label_values(before, MEMORY, "pid", type="rss") == {str(p) for p in old_workers}

        victim = sorted(served_by)[0]  # a worker whose requests are in the totals
        server.kill_worker(victim)
        deadline = time.monotonic() + 30
        while True:
            workers = server.workers()
            after = server.scrape()
            gauge_pids = label_values(after, MEMORY, "pid", type="rss")
            if victim not in workers and len(workers) == 2 and gauge_pids == {str(p) for p in workers}:
                break
            assert time.monotonic() < deadline, (victim, workers, gauge_pids)
            time.sleep(0.3)
        assert str(victim) not in label_values(after, MEMORY, "pid")
        # The dead worker's requests still count, and nothing was served since the first scrape.
        assert value(after, REQUESTS, **labels) == sent
        users = sum(value(after, f"segdash_cache_{kind}_total", cache="users") for kind in ("hits", "misses"))
        assert users == sent
        assert "Perhaps out of memory?" in server.output()
    finally:
        server.close()
        drop_database(mongo_uri, db_name)


@pytest.mark.system
def test_a_fresh_metrics_directory_per_start_removed_on_exit(mongo_uri):
    db_name = f"segdash_metrics_{uuid.uuid4().hex[:8]}"
    # Left behind by a master that was killed (no such pid): removed at the next start.
    orphan = tempfile.mkdtemp(prefix="segdash-metrics-999999999-")
    open(os.path.join(orphan, "counter_1.db"), "wb").close()
    server = GunicornServer(mongo_uri, db_name, workers=2)
    try:
        server.get("/healthz")
        match = re.search(r"Prometheus multiprocess directory: (\S+?)\"", server.output())
        assert match, server.output()
        directory = match.group(1)
        assert os.path.basename(directory).startswith(f"segdash-metrics-{server.pid}-")
        assert not os.path.exists(orphan)
        files = {os.path.basename(f) for f in glob.glob(os.path.join(directory, "*.db"))}
        for pid in server.workers():
            assert f"gauge_liveall_{pid}.db" in files, files
        server.stop()
        assert not os.path.exists(directory)
    finally:
        server.close()
        drop_database(mongo_uri, db_name)


@pytest.mark.system
def test_a_given_metrics_directory_is_emptied_at_start_and_kept(mongo_uri, tmp_path):
    db_name = f"segdash_metrics_{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"from an earlier run")
    (directory / "keep.txt").write_text("not ours")
    server = GunicornServer(mongo_uri, db_name, workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory))
    try:
        samples = server.scrape()
        assert not (directory / "counter_999999.db").exists()
        assert (directory / "keep.txt").exists()
        assert label_values(samples, MEMORY, "pid", type="rss") == {str(p) for p in server.workers()}
        server.stop()
        assert directory.exists()
    finally:
        server.close()
        drop_database(mongo_uri, db_name)


# --- one process (Flask test client): the default registry ---

def test_metrics_in_one_process(app, client, lead):
    from cache import caches

    before = parse_metrics(client.get("/metrics").get_data(as_text=True))
    with app.app_context():
        stats_before = caches().stats()
    assert client.get("/api/batches", headers=lead).status_code == 200
    assert client.get("/api/batches/batch_0001", headers=lead).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.open("/api/batches", method="BREW", headers=lead).status_code == 405
    assert client.get("/healthz").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    after = parse_metrics(response.get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, endpoint="/api/batches", method="GET", status="200") == 1
    detail = [e for e in label_values(after, REQUESTS, "endpoint") if e.startswith("/api/batches/<")]
    assert detail and delta(REQUESTS, endpoint=detail[0], method="GET", status="404") == 1
    assert delta(REQUESTS, endpoint="unmatched", method="GET", status="404") == 1
    # A method no route takes: no URL rule matched, and the method label stays bounded.
    assert delta(REQUESTS, endpoint="unmatched", method="other", status="405") == 1
    assert delta("segdash_db_commands_total", command="ping") == 1
    assert str(os.getpid()) not in label_values(after, MEMORY, "pid")  # no pid label in one process
    assert value(after, MEMORY, type="rss") > 0
    # The exported cache counts are cache.py's own counts.
    with app.app_context():
        stats_after = caches().stats()
    for name in ("users", "counts", "details"):
        for kind in ("hits", "misses"):
            assert (delta(f"segdash_cache_{kind}_total", cache=name)
                    == stats_after[name][kind] - stats_before[name][kind]), (name, kind)


def test_failed_job_is_counted(app, client, lead, monkeypatch, runner):
    import file_sync

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(file_sync, "unlinked_count", broken)
    name = "segdash_job_duration_seconds_count"
    failed = {"kind": "sync", "state": "failed"}
    before = value(parse_metrics(client.get("/metrics").get_data(as_text=True)), name, **failed)
    response = client.post("/api/sync-batch-files?wait=30", headers=lead)
    assert response.status_code == 200
    assert response.get_json()["state"] == "failed" and response.get_json()["error_code"] == "unexpected"
    after = value(parse_metrics(client.get("/metrics").get_data(as_text=True)), name, **failed)
    assert after - before == 1


def test_metrics_endpoint_needs_no_login_and_only_get(client):
    assert client.get("/metrics").status_code == 200
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
