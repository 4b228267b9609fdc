"""check_memory.py against a running SegDash Gunicorn (master + 2 workers)."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from gunicorn_server import GunicornServer, drop_database
from helpers import ROOT

SCRIPT = os.path.join(ROOT, "check_memory.py")


@pytest.fixture(scope="module")
def server(mongo_uri):
    """Settings come from the master's environment (max_requests, MEMORY_WARN_MB) and its
    command line (--threads 3 wins over GUNICORN_THREADS=2)."""
    db_name = f"segdash_checkmem_{uuid.uuid4().hex[:8]}"
    started = GunicornServer(mongo_uri, db_name, workers=2, extra_args=("--threads", "3"),
                             GUNICORN_MAX_REQUESTS="321", GUNICORN_MAX_REQUESTS_JITTER="7",
                             MEMORY_WARN_MB="100000")
    yield started
    started.close()
    drop_database(mongo_uri, db_name)


def run(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k != "MEMORY_WARN_MB"}
    environ.update(env or {})
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.system
def test_json_report_lists_master_workers_totals_and_settings(server):
    result = run("--pid", str(server.pid), "--json", "--threshold-mb", "100000")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["master_pid"] == server.pid
    roles = {(p["role"], p["pid"]) for p in data["processes"]}
    assert roles == {("master", server.pid)} | {("worker", pid) for pid in server.workers()}
    for kind in ("rss", "pss", "uss"):
        assert data["totals"][f"{kind}_bytes"] == sum(p[f"{kind}_bytes"] for p in data["processes"])
    for process in data["processes"]:
        assert 0 < process["uss_bytes"] <= process["pss_bytes"] <= process["rss_bytes"]
    assert data["settings"] == {"workers": 2, "threads": 3, "worker_class": "gthread", "timeout": 120,
                                "max_requests": 321, "max_requests_jitter": 7}
    assert data["environment"] == "master"
    assert data["settings_from"] == ["gunicorn_config.py", "command line"]
    assert data["over_threshold"] is False
    assert data["recommendations"] == ["Memory is within limits; no change needed."]


@pytest.mark.system
def test_text_report_and_exit_codes(server):
    result = run("--pid", str(server.pid), "--threshold-mb", "100000")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Gunicorn master {server.pid}" in out
    assert f"master   {server.pid:>8}" in out
    for pid in server.workers():
        assert f"worker   {pid:>8}" in out
    assert "\ntotal " in out
    assert "Settings: workers=2 threads=3 class=gthread timeout=120 max_requests=321" in out
    assert "within the 100000 MB threshold" in out

    result = run("--pid", str(server.pid), "--threshold-mb", "1")
    assert result.returncode == 1
    assert "ABOVE the 1 MB threshold" in result.stdout
    assert "not even one worker fits" in result.stdout


@pytest.mark.system
def test_threshold_defaults_to_memory_warn_mb(server):
    # From the master's environment (MEMORY_WARN_MB=100000) when this one has none…
    result = run("--pid", str(server.pid), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["threshold_mb"] == 100000
    # …and from this environment first.
    result = run("--pid", str(server.pid), "--json", env={"MEMORY_WARN_MB": "1"})
    assert result.returncode == 1
    assert json.loads(result.stdout)["over_threshold"] is True


@pytest.mark.system
def test_finds_the_master_without_a_pid(server):
    import check_memory

    masters = check_memory.find_masters()
    assert server.pid in masters
    assert not set(server.workers()) & set(masters)


def test_no_such_process():
    result = run("--pid", "999999999")
    assert result.returncode == 2
    assert "No process" in result.stderr


def test_recommendations():
    import check_memory

    mb = check_memory.MB

    def proc(role, pid, pss, uss):
        return {"role": role, "pid": pid, "pss_bytes": pss * mb, "uss_bytes": uss * mb, "rss_bytes": 2 * pss * mb,
                "uss_mb": uss}

    settings = {"workers": 3, "threads": 2, "worker_class": "gthread", "timeout": 120, "max_requests": 500,
                "max_requests_jitter": 50}
    procs = [proc("master", 1, 100, 20), proc("worker", 2, 300, 200), proc("worker", 3, 300, 200),
             proc("worker", 4, 700, 600)]
    advice = check_memory.recommendations(procs, settings, 1000)
    assert any("above the 1000 MB threshold" in a and "GUNICORN_WORKERS=2" in a for a in advice), advice
    assert any("Worker 4 has grown" in a and "GUNICORN_MAX_REQUESTS (now 500)" in a for a in advice), advice

    near = check_memory.recommendations(procs, settings, 1500)
    assert any("near the 1500 MB threshold" in a for a in near), near

    unrecycled = check_memory.recommendations(procs[:3], dict(settings, max_requests=0, workers=2), 100000)
    assert any("never recycled" in a for a in unrecycled), unrecycled

    missing = check_memory.recommendations(procs[:2], settings, 100000)
    assert any("1 worker running but 3 configured" in a for a in missing), missing
