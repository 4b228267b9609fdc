"""Team figures (/api/metrics): computed once per change for the whole cluster, outside the
requests, stored as one document, read by every worker in one round trip; no thundering herd
inside a worker."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cachetools import TTLCache

import dashboard_stats
from cache import CountingCache
from factories import insert_batches
from helpers import build_app, make_user


@pytest.fixture
def workers(app, db_name, mongo_uri):
    """Two more app instances on `app`'s database, as two Gunicorn workers would be."""
    return [build_app(mongo_uri, db_name, CACHE_VERSION_CHECK_SECONDS=0.2,
                      TEAM_METRICS_MIN_SECONDS=0.5) for _ in range(2)]


def aggregations(commands):
    return [c for c in commands.snapshot() if c["name"] == "aggregate" and c["collection"] == "batches"]


def figures(client, headers):
    response = client.get("/api/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_one_worker_computes_the_others_read_the_stored_figures(workers, database, commands):
    first, second = workers
    headers = make_user(first, "lead1", "lead")
    make_user(first, "sam", "segmenter")
    insert_batches(database, range(1, 7))
    a, b = first.test_client(), second.test_client()
    time.sleep(0.3)
    commands.clear()
    assert figures(a, headers)["totals"]["batches"] == 6
    assert len(aggregations(commands)) == 1
    commands.clear()
    got = figures(b, headers)
    assert got["totals"]["batches"] == 6 and not got.get("stale")
    assert aggregations(commands) == []  # read the stored document instead
    stored = [c["name"] for c in commands.snapshot() if c["collection"] == "app_state"
              and (c["command"].get("filter") or c["command"].get("query") or {}).get("_id") == "team_metrics"]
    assert stored == ["find"]
    # A write in the first worker: its next request starts the computation in the background and
    # answers the stored figures, marked stale; fresh ones follow without a request waiting for them...
    assert a.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=headers).status_code == 200
    got = figures(a, headers)
    assert got["stale"] is True and got["by_status"]["assigned"] == 0
    assert fresh(a, headers)["by_status"]["assigned"] == 1
    # ...and the second one within the version-check interval, without computing again.
    time.sleep(0.3)
    commands.clear()
    got = figures(b, headers)
    assert got["by_status"]["assigned"] == 1 and not got.get("stale")
    assert aggregations(commands) == []


def test_figures_stay_stale_while_another_process_computes(workers, database):
    first, second = workers
    headers = make_user(first, "lead1", "lead")
    insert_batches(database, range(1, 4))
    a, b = first.test_client(), second.test_client()
    assert figures(a, headers)["totals"]["batches"] == 3
    insert_batches(database, range(4, 6))
    # Another process holds the compute lease: the stored figures are served, marked stale.
    with first.app_context():
        from cache import record_write
        record_write()
        assert dashboard_stats._claim(dashboard_stats.utcnow())
    time.sleep(0.3)
    got = figures(b, headers)
    assert got["stale"] is True and got["totals"]["batches"] == 3
    # The lease ends (the computing process finished or died): the next reader starts the computation.
    database.app_state.update_one({"_id": dashboard_stats.STORED_ID}, {"$unset": {"computing_until": ""}})
    time.sleep(0.6)
    assert fresh(b, headers)["totals"]["batches"] == 5


def test_a_computation_that_took_long_is_not_repeated_sooner_than_four_times_as_long(workers, database):
    """Under constant writes the database spends at most about a quarter of its time on the figures."""
    first, _second = workers
    headers = make_user(first, "lead1", "lead")
    insert_batches(database, range(1, 4))
    client = first.test_client()
    assert figures(client, headers)["totals"]["batches"] == 3
    database.app_state.update_one({"_id": dashboard_stats.STORED_ID}, {"$set": {"compute_seconds": 5.0}})
    insert_batches(database, range(4, 6))
    with first.app_context():
        from cache import record_write
        record_write()
    time.sleep(0.6)  # past TEAM_METRICS_MIN_SECONDS, not past 4 x 5 s
    for _ in range(3):
        got = figures(client, headers)
        assert got["stale"] is True and got["totals"]["batches"] == 3
    assert "computing_until" not in database.app_state.find_one({"_id": dashboard_stats.STORED_ID})


def fresh(client, headers, timeout=5.0):
    """The figures once they are no longer stale (computed in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        got = figures(client, headers)
        if not got.get("stale"):
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def test_concurrent_misses_compute_once():
    cache = CountingCache("test-single-flight", TTLCache(maxsize=4, ttl=60))
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(1)
        return 42

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get_or_compute, "key", compute) for _ in range(8)]
        time.sleep(0.2)
        gate.set()
        assert [f.result() for f in futures] == [42] * 8
    assert len(calls) == 1


def test_first_figures_while_another_process_computes_them(workers, database):
    first, second = workers
    headers = make_user(first, "lead1", "lead")
    insert_batches(database, range(1, 3))
    with first.app_context():
        assert dashboard_stats._claim(dashboard_stats.utcnow())  # only the lease exists yet
    got = figures(second.test_client(), headers)
    assert got["totals"]["batches"] == 2 and not got.get("stale")
def test_a_lease_without_figures_yet_is_not_stored_figures(app, database):
    """Another process holds the lease of the very first computation: compute here too."""
    from datetime import timedelta

    from timeutil import utcnow

    database.app_state.insert_one({"_id": "team_metrics", "computing_until": utcnow() + timedelta(seconds=30)})
    with app.test_request_context():
        figures = dashboard_stats.team_metrics()
    assert "totals" in figures and not figures.get("stale")
