"""Cache coherence between two app instances (as two workers or two hosts would be)."""
import time

import pytest
from cachetools import LRUCache

from cache import CountingCache
from factories import insert_batches
from helpers import build_app, indexed_app, make_user


@pytest.fixture
def two_apps(app, db_name, mongo_uri):
    """`app` and a second instance on the same database, with a short version-check interval."""
    first = build_app(mongo_uri, db_name, CACHE_VERSION_CHECK_SECONDS=0.3)
    second = build_app(mongo_uri, db_name, CACHE_VERSION_CHECK_SECONDS=0.3)
    return first, second


def page(client, headers, **params):
    """GET /api/batches with `params`: the list page (200)."""
    response = client.get("/api/batches", headers=headers, query_string=params)
    assert response.status_code == 200
    return response.get_json()


def total(client, headers, **params):
    return page(client, headers, **params)["total"]


def test_write_is_visible_at_once_in_the_writer_and_within_the_interval_elsewhere(two_apps, database):
    first, second = two_apps
    headers = make_user(first, "lead9", "lead")
    make_user(first, "sam", "segmenter")
    insert_batches(database, range(1, 6))
    a, b = first.test_client(), second.test_client()
    assert total(a, headers, status="pending") == 5
    assert total(b, headers, status="pending") == 5
    # The second instance assigns a batch: its own cache is cleared at once.
    response = b.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=headers)
    assert response.status_code == 200
    assert total(b, headers, status="pending") == 4
    # The first instance still holds its cached count until it re-reads the version...
    time.sleep(0.45)
    # ...and after the check interval it sees the write.
    assert total(a, headers, status="pending") == 4


def test_without_a_write_the_count_stays_cached(two_apps, database, commands):
    first, _ = two_apps
    headers = make_user(first, "lead9", "lead")
    insert_batches(database, range(1, 4))
    client = first.test_client()
    assert total(client, headers) == 3
    # Insert behind the app's back (no version bump): the cached count is served.
    insert_batches(database, range(10, 12))
    commands.clear()
    assert total(client, headers) == 3
    counts = [c for c in commands.snapshot() if c["name"] in ("count", "aggregate")
              and c["collection"] == "batches"]
    assert counts == []


def test_version_is_read_at_most_once_per_interval(app, database, lead, commands):
    insert_batches(database, range(1, 3))
    client = app.test_client()
    client.get("/api/batches", headers=lead)
    commands.clear()
    for _ in range(20):
        assert client.get("/api/batches", headers=lead).status_code == 200
    version_reads = [c for c in commands.snapshot() if c["collection"] == "app_state"]
    # Twenty quick requests within the 1 s interval: at most one version read.
    assert len(version_reads) <= 1


def test_counting_cache_counts_hits_and_misses():
    cache = CountingCache("t", LRUCache(maxsize=2))
    assert cache.get_or_compute("a", lambda: 1) == 1
    assert cache.get_or_compute("a", lambda: 2) == 1
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 1}


def test_cached_list_page_follows_writes_in_every_instance(two_apps, database, commands):
    """The rendered page is cached like the count, and cleared by the same version bump."""
    first, second = two_apps
    headers = make_user(first, "lead9", "lead")
    make_user(first, "sam", "segmenter")
    insert_batches(database, range(1, 6))
    a, b = first.test_client(), second.test_client()
    before = page(a, headers)
    assert [item["assignee"] for item in before["items"]] == [None] * 5
    commands.clear()
    assert page(a, headers) == before  # served from the page cache: no batches command
    assert [c for c in commands.snapshot() if c["collection"] == "batches"] == []
    assert b.patch("/api/batches/batch_0002", json={"assignee": "sam"}, headers=headers).status_code == 200
    assert page(b, headers)["items"][1]["assignee"] == "sam"  # the writer: at once
    time.sleep(0.45)
    after = page(a, headers)  # the other instance: after its version check
    assert after["items"][1]["assignee"] == "sam"
    assert after["items"][1]["status"] == "assigned"


def test_page_cache_keys_on_filters_and_paging(app, database, lead):
    insert_batches(database, range(1, 8))
    insert_batches(database, range(8, 10), assignee="sam", status="assigned")
    client = app.test_client()
    first = page(client, lead, per_page=3)
    second = page(client, lead, per_page=3, page=2)
    assigned = page(client, lead, status="assigned")
    assert [i["id"] for i in first["items"]] == ["batch_0001", "batch_0002", "batch_0003"]
    assert [i["id"] for i in second["items"]] == ["batch_0004", "batch_0005", "batch_0006"]
    assert [i["id"] for i in assigned["items"]] == ["batch_0008", "batch_0009"]
    following = page(client, lead, per_page=3, after=second["next_cursor"])
    assert [i["id"] for i in following["items"]] == ["batch_0007", "batch_0008", "batch_0009"]
    assert following["next_cursor"] is None and following["page"] == 3
    # The same requests again come from the cache and answer the same.
    assert page(client, lead, per_page=3) == first
    assert page(client, lead, per_page=3, page=2) == second


def test_batch_details_expire_even_without_a_version_bump(mongo_uri, db_name):
    """A write that bypassed the write path is seen once the detail's TTL has run out."""
    import db

    app = indexed_app(mongo_uri, db_name, DETAIL_CACHE_TTL=0.3, CACHE_VERSION_CHECK_SECONDS=3600.0)
    with app.app_context():
        database = db.database()
    try:
        headers = make_user(app, "lead9", "lead")
        insert_batches(database, [1])
        client = app.test_client()
        assert client.get("/api/batches/batch_0001", headers=headers).get_json()["name"] == "batch_0001"
        database.batches.update_one({"id": "batch_0001"}, {"$set": {"name": "Renamed"}})
        assert client.get("/api/batches/batch_0001", headers=headers).get_json()["name"] == "batch_0001"
        time.sleep(0.4)
        assert client.get("/api/batches/batch_0001", headers=headers).get_json()["name"] == "Renamed"
    finally:
        with app.app_context():
            db.client().drop_database(db_name)


def test_a_write_answers_with_what_it_wrote_though_the_detail_was_cached(client, database, lead, seg):
    """The bump comes when the writing function ends; reads inside it skip the stale caches."""
    insert_batches(database, [1])
    assert client.get("/api/batches/batch_0001", headers=lead).get_json()["assignee"] is None
    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=lead)
    assert response.get_json()["assignee"] == "sam" and response.get_json()["status"] == "assigned"
