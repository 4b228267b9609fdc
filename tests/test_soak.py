"""The soak test's short form: bench/soak.py's run, for about 40 seconds, on the session's database.

Same code path as `.venv/bin/python -m bench.soak --minutes 5`: real Gunicorn with worker
recycling on (here after 60 requests, so that workers are replaced several times even
on a slow machine), 16 clients of the benchmark's load loop, mixed reads and writes.
"""
import pytest

from bench import soak

pytestmark = pytest.mark.system


def test_short_soak_has_no_server_errors_and_flat_worker_memory(mongo_uri):
    settings = soak.Settings(seconds=36, round_seconds=12, workers=3, batches=120, masks=500,
                             max_requests=60, max_requests_jitter=10, mongo_uri=mongo_uri)

    results = soak.run(settings)

    soak.print_summary(results)
    assert results["classes"]["5xx"] == 0
    assert results["transport_errors"] == 0
    assert results["unexpected"] == 0, results["endpoints"]
    assert results["memory"]["within_bound"], results["memory"]
    assert results["passed"], results["failures"]
    # Every planned kind of request was made and answered as planned, writes included.
    seen = {(row["method"], row["endpoint"]) for row in results["endpoints"]}
    assert seen == set(soak.EXPECTED)
    assert results["statuses"].get("201", 0) > 0          # new masks stored
    assert results["workflow_steps"]["applied"] > 0        # batches moved through the workflow
    # The client and the app's own log saw the same requests (a retried request counts twice there).
    assert results["server_logged_requests"] >= results["requests"]
    # Workers were recycled and their replacements measured too.
    assert results["memory"]["recycled"] >= settings.workers
    assert results["memory"]["worker_processes"] == len(results["memory"]["generations"])
