"""JSON-lines logs on stdout at LOG_LEVEL, and the request id in headers, error bodies and log lines."""
import re
import time
import uuid

import pytest

from gunicorn_server import GunicornServer, drop_database, prepare_database

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def served(mongo_uri):
    """Gunicorn at INFO with every request memory-sampled (a warning inside each request)
    and Gunicorn's access log on stdout."""
    db_name = f"segdash_logging_{uuid.uuid4().hex[:8]}"
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2, MEMORY_SAMPLE_RATE="1", MEMORY_WARN_MB="1",
                            GUNICORN_ACCESS_LOG="-")
    yield server, lead
    server.close()
    drop_database(mongo_uri, db_name)


def lines_for(server, request_id, loggers=(), timeout=10):
    """The log lines of one request, once those of `loggers` are there (Gunicorn writes its
    access line after the response is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.json_lines() if line.get("request_id") == request_id]
        if set(loggers) <= {line["logger"] for line in lines} or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.system
def test_every_line_of_stdout_is_json(served):
    server, lead = served
    assert server.get("/api/batches", headers=lead).status_code == 200
    assert server.get("/api/nothing-here").status_code == 404
    lines = server.lines()
    assert len(lines) > 5
    for line in server.json_lines():
        assert {"time", "level", "logger", "message", "pid"} <= set(line), line
        assert line["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    messages = [line["message"] for line in server.json_lines()]
    assert any(m.startswith("Gunicorn starting with config: workers=2 threads=2 class=gthread timeout=120")
               for m in messages)
    assert any(m.startswith("Booting worker with pid") for m in messages)


@pytest.mark.system
def test_request_id_is_generated_returned_and_on_every_line_of_the_request(served):
    server, lead = served
    response = server.get("/api/batches", headers=lead)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    # The app's request line, the memory sample (a warning, in the request) and Gunicorn's access line.
    expected = {"segdash.request", "segdash.memory", "gunicorn.access"}
    lines = lines_for(server, request_id, expected)
    assert expected <= {line["logger"] for line in lines}, lines
    request_line = next(line for line in lines if line["logger"] == "segdash.request")
    assert request_line["level"] == "INFO"
    assert request_line["method"] == "GET" and request_line["path"] == "/api/batches"
    assert request_line["status"] == 200 and request_line["duration_ms"] >= 0
    assert request_line["pid"] in server.workers()
    memory_line = next(line for line in lines if line["logger"] == "segdash.memory")
    assert memory_line["level"] == "WARNING" and memory_line["rss_mb"] > 1
    # The worker's own memory, not the master's (the app is created before the fork).
    assert memory_line["pid"] == request_line["pid"] and f"'pid': {request_line['pid']}" in memory_line["message"]


@pytest.mark.system
def test_incoming_request_id_is_kept_and_in_the_error_body(served):
    server, _lead = served
    response = server.get("/api/batches", headers={"X-Request-ID": "client-7.abc:1_x"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "client-7.abc:1_x"
    body = response.json()
    assert body == {"error": "unauthorized", "message": body["message"], "request_id": "client-7.abc:1_x"}
    assert {line["logger"] for line in lines_for(server, "client-7.abc:1_x")} >= {"segdash.request"}


@pytest.mark.parametrize("incoming", ["has space", "x" * 65, "-leading-dash", "a/b", "ünï", "a\"b"])
@pytest.mark.system
def test_unsafe_incoming_request_ids_are_replaced(served, incoming):
    server, _lead = served
    response = server.get("/api/nothing-here", headers={"X-Request-ID": incoming.encode("utf-8")})
    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    assert response.json()["request_id"] == request_id


@pytest.mark.system
def test_probes_are_logged_at_debug_only(served):
    server, _lead = served
    response = server.get("/healthz")
    request_id = response.headers["X-Request-ID"]
    assert [line["logger"] for line in lines_for(server, request_id)
            if line["logger"] == "segdash.request"] == []


@pytest.mark.system
def test_log_level_warning_keeps_only_warnings(mongo_uri):
    db_name = f"segdash_logging_{uuid.uuid4().hex[:8]}"
    lead = prepare_database(mongo_uri, db_name)
    server = GunicornServer(mongo_uri, db_name, workers=2, LOG_LEVEL="WARNING")
    try:
        assert server.get("/api/batches", headers=lead).status_code == 200
        assert server.get("/api/batches").status_code == 401
        server.stop()
        lines = server.json_lines()
        assert all(line["level"] in {"WARNING", "ERROR", "CRITICAL"} for line in lines), lines
        assert not [line for line in lines if line["logger"] == "segdash.request"]
    finally:
        server.close()
        drop_database(mongo_uri, db_name)


# --- the Flask test client ---

def test_error_bodies_carry_the_request_id(client):
    response = client.get("/api/batches")
    assert response.status_code == 401
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]
    response = client.get("/api/batches", headers={"X-Request-ID": "trace-42"})
    assert response.get_json()["request_id"] == "trace-42" == response.headers["X-Request-ID"]


def test_successful_responses_carry_the_header_too(client):
    response = client.get("/healthz", headers={"X-Request-ID": "ok-1"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "ok-1"
    assert "request_id" not in response.get_json()


def test_html_error_pages_keep_their_shape(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
