"""SegDash under real Gunicorn: config, preload, and no database connection in the master."""
import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

import psutil
import pytest
import requests

from conftest import ROOT, free_port


def db_port(uri):
    return urlparse(uri).port or 27017


@pytest.fixture
def gunicorn(mongo_uri):
    port = free_port()
    db_name = f"segdash_gunicorn_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, MONGO_URI=mongo_uri, MONGO_DB=db_name, SECRET_KEY="gunicorn-test",
               GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_THREADS="2",
               LOG_LEVEL="INFO")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn_config.py", "app:app"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("gunicorn did not serve /healthz: " + process.stdout.read())
    yield process, base
    process.terminate()
    try:
        output = process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    process.output = output


def connections_to(pid, port):
    return [c for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port]


def test_master_holds_no_database_connection_and_workers_do(gunicorn, mongo_uri):
    process, base = gunicorn
    for _ in range(10):
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
    master = psutil.Process(process.pid)
    workers = master.children()
    assert len(workers) == 2
    port = db_port(mongo_uri)
    assert connections_to(master.pid, port) == []
    assert any(connections_to(worker.pid, port) for worker in workers)


def test_api_answers_json_errors_through_gunicorn(gunicorn):
    _process, base = gunicorn
    response = requests.get(base + "/api/batches", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    response = requests.get(base + "/api/nothing-here", timeout=5)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_startup_logs_the_effective_configuration(gunicorn):
    process, _base = gunicorn
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert "Gunicorn starting with config: workers=2 threads=2 class=gthread timeout=120" in output


def test_importing_the_app_creates_no_client():
    code = ("import app, db; assert db.clients_in_this_process() == [], 'client at import';"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, MONGO_URI="mongodb://127.0.0.1:1/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_default_worker_formula():
    sys.path.insert(0, ROOT)
    import gunicorn_config

    assert gunicorn_config.default_workers(12) == 8
    assert gunicorn_config.default_workers(2) == 5
    assert gunicorn_config.default_workers(1) == 3
