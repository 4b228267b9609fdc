"""SegDash under real Gunicorn: config, preload, and no database connection in the master."""
import os
import subprocess
import sys
import uuid
from urllib.parse import urlparse

import psutil
import pytest

from gunicorn_server import GunicornServer, drop_database
from helpers import ROOT

pytestmark = pytest.mark.system  # real Gunicorn processes


def db_port(uri):
    return urlparse(uri).port or 27017


@pytest.fixture
def gunicorn(mongo_uri):
    db_name = f"segdash_gunicorn_{uuid.uuid4().hex[:8]}"
    server = GunicornServer(mongo_uri, db_name, workers=2)
    yield server
    server.close()
    drop_database(mongo_uri, db_name)


def connections_to(pid, port):
    return [c for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port]


@pytest.mark.system
def test_master_holds_no_database_connection_and_workers_do(gunicorn, mongo_uri):
    for _ in range(10):
        assert gunicorn.get("/healthz").status_code == 200
    master = psutil.Process(gunicorn.pid)
    workers = master.children()
    assert len(workers) == 2
    port = db_port(mongo_uri)
    assert connections_to(master.pid, port) == []
    assert any(connections_to(worker.pid, port) for worker in workers)


@pytest.mark.system
def test_api_answers_json_errors_through_gunicorn(gunicorn):
    response = gunicorn.get("/api/batches")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    response = gunicorn.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.system
def test_startup_logs_the_effective_configuration(gunicorn):
    output = gunicorn.stop()
    assert "Gunicorn starting with config: workers=2 threads=2 class=gthread timeout=120" in output


def test_importing_the_app_creates_no_client():
    code = ("import app, db; assert db.clients_in_this_process() == [], 'client at import';"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, MONGO_URI="mongodb://127.0.0.1:1/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_default_worker_formula():
    import gunicorn_config

    assert gunicorn_config.default_workers(12) == 8
    assert gunicorn_config.default_workers(2) == 5
    assert gunicorn_config.default_workers(1) == 3


@pytest.mark.system
def test_gevent_workers_serve_concurrent_requests(mongo_uri):
    """With preload, gevent must patch before the app is imported, or a worker blocks on an OS lock."""
    from concurrent.futures import ThreadPoolExecutor

    from gunicorn_server import prepare_database

    db_name = f"segdash_gevent_{uuid.uuid4().hex[:8]}"
    headers = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=1, GUNICORN_WORKER_CLASS="gevent",
                            COUNT_CACHE_TTL="0", CACHE_VERSION_CHECK_SECONDS="0")
    try:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(
                lambda _: server.get("/api/batches", headers=headers, timeout=30).status_code, range(48)))
        assert statuses == [200] * 48
    finally:
        output = server.stop()
        server.close()
        drop_database(mongo_uri, db_name)
    assert "class=gevent" in output
