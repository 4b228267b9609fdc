"""With the database unreachable, requests answer 503 JSON quickly and nothing crashes."""
import time

import pytest

from bench.servers import free_port
from helpers import build_app

pytestmark = pytest.mark.system


@pytest.fixture
def dead_app():
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    return build_app(uri, "segdash_outage", MONGO_SERVER_SELECTION_TIMEOUT_MS=800)


@pytest.mark.parametrize("method,path", [
    ("get", "/healthz"),
    ("get", "/api/batches"),
    ("get", "/api/batches/batch_0001"),
    ("post", "/api/sync-batch-files"),
    ("get", "/api/metrics"),
])
def test_requests_answer_503_quickly(dead_app, method, path):
    client = dead_app.test_client()
    started = time.monotonic()
    response = getattr(client, method)(path, headers={"Authorization": "Bearer whatever"})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.get_json()
    if path == "/healthz":
        assert body == {"status": "degraded", "db": "unreachable"}
    else:
        assert body["error"] == "database_unavailable"
    assert "Timeout" not in str(body) and "pymongo" not in str(body)
    # A few server-selection timeouts at most, never a hang.
    assert elapsed < 15
