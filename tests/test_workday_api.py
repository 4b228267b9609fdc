"""The API behind a day's work: list sorts (with cursors and the export), the stored progress,
bulk assignment by filter, a segmenter's own figures and the segmenters' workload."""
import csv
import io

import pytest

import batch_progress
from checks import assert_error, snapshot
from factories import insert_batches
from test_masks import png_bytes, upload


def ids_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


@pytest.fixture
def varied(database, seg, other_seg):
    """Five batches whose names, statuses, assignees, times and progress differ in order."""
    from datetime import datetime, timedelta, timezone

    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [  # number, name, status, assignee, masks, images, updated hours
        (1, "delta", "pending", None, 0, 4, 5),
        (2, "Alpha", "assigned", "sam", 1, 4, 1),
        (3, "charlie", "in_progress", "olga", 4, 4, 3),
        (4, "bravo", "completed", "sam", 2, 4, 2),
        (5, "echo", "assigned", "olga", 3, 4, 4),
    ]
    for number, name, status, assignee, masks, images, hours in rows:
        insert_batches(database, [number], name=name, status=status, assignee=assignee, mask_count=masks,
                       image_count=images, updated_at=base + timedelta(hours=hours))
    for doc in database.batches.find():
        database.batches.update_one({"_id": doc["_id"]}, {"$set": {"progress": batch_progress.percent(doc)}})


@pytest.mark.parametrize(("sort", "expected"), [
    ("id", ["batch_0001", "batch_0002", "batch_0003", "batch_0004", "batch_0005"]),
    ("-id", ["batch_0005", "batch_0004", "batch_0003", "batch_0002", "batch_0001"]),
    ("status", ["batch_0002", "batch_0005", "batch_0004", "batch_0003", "batch_0001"]),
    ("assignee", ["batch_0001", "batch_0003", "batch_0005", "batch_0002", "batch_0004"]),
    ("-updated_at", ["batch_0001", "batch_0005", "batch_0003", "batch_0004", "batch_0002"]),
    ("progress", ["batch_0001", "batch_0002", "batch_0004", "batch_0005", "batch_0003"]),
    ("-progress", ["batch_0003", "batch_0005", "batch_0004", "batch_0002", "batch_0001"]),
])
def test_list_sorts(client, lead, varied, sort, expected):
    assert ids_of(client.get(f"/api/batches?sort={sort}", headers=lead)) == expected


def test_name_sort_follows_the_stored_names(client, lead, varied):
    # Names sort as stored (binary order: capitals first).
    assert ids_of(client.get("/api/batches?sort=name", headers=lead)) == [
        "batch_0002", "batch_0004", "batch_0003", "batch_0001", "batch_0005"]


@pytest.mark.parametrize("sort", ["id", "-id", "status", "-assignee", "progress", "-updated_at"])
def test_cursor_paging_walks_every_sort_once(client, lead, varied, sort):
    whole = ids_of(client.get(f"/api/batches?sort={sort}", headers=lead))
    seen, url = [], f"/api/batches?sort={sort}&per_page=2"
    while url:
        body = client.get(url, headers=lead).get_json()
        seen += [item["id"] for item in body["items"]]
        url = f"/api/batches?sort={sort}&per_page=2&after={body['next_cursor']}" if body["next_cursor"] else None
    assert seen == whole


def test_a_cursor_continues_only_its_own_sort(client, lead, varied, database):
    cursor = client.get("/api/batches?sort=name&per_page=2", headers=lead).get_json()["next_cursor"]
    before = snapshot(database)
    assert_error(client.get(f"/api/batches?sort=status&per_page=2&after={cursor}", headers=lead),
                 400, "invalid_cursor")
    assert_error(client.get(f"/api/batches?per_page=2&after={cursor}", headers=lead), 400, "invalid_cursor")
    assert snapshot(database) == before


def test_an_unknown_sort_is_refused(client, lead, varied):
    assert_error(client.get("/api/batches?sort=secret", headers=lead), 400, "invalid_parameter")
    assert_error(client.get("/api/export/batches.csv?sort=--id", headers=lead), 400, "invalid_parameter")


def test_export_follows_the_sort(client, lead, varied):
    response = client.get("/api/export/batches.csv?sort=-progress&status=assigned", headers=lead)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]
    assert [row[0] for row in rows] == ["batch_0005", "batch_0002"]


def test_every_sort_is_served_by_an_index():
    import batch_service
    import db

    keys = [[field for field, _ in keys] for collection, keys, _, _ in db.INDEXES if collection == "batches"]
    for name in batch_service.SORT_FIELDS:
        wanted = [field for field, _ in batch_service.sort_spec(name)]
        assert wanted in keys, name


# --------------------------------------------------------------------------- stored progress


def test_progress_is_stored_by_every_write_of_masks_and_status(client, database, lead, seg):
    insert_batches(database, [7], image_count=2)
    assert database.batches.find_one({"id": "batch_0007"})["progress"] == 0.0
    upload(client, lead, png_bytes("a"), "m1.png", batch_id="batch_0007")
    assert database.batches.find_one({"id": "batch_0007"})["progress"] == 50.0
    insert_batches(database, [8], image_count=0)
    upload(client, lead, png_bytes("b"), "m2.png", batch_id="batch_0008")
    assert database.batches.find_one({"id": "batch_0008"})["progress"] == 0.0
    client.patch("/api/batches/batch_0008", json={"assignee": "sam"}, headers=lead)
    for status in ("in_progress", "completed"):
        response = client.patch("/api/batches/batch_0008", json={"status": status}, headers=lead)
        assert response.status_code == 200, response.get_data(as_text=True)
    doc = database.batches.find_one({"id": "batch_0008"})
    assert doc["progress"] == batch_progress.percent(doc) == 100.0


def test_ensure_indexes_fills_in_a_missing_progress(app, database):
    import db

    insert_batches(database, [3], mask_count=1, image_count=4)
    database.batches.update_one({"id": "batch_0003"}, {"$unset": {"progress": ""}})
    with app.app_context():
        db.ensure_indexes()
    assert database.batches.find_one({"id": "batch_0003"})["progress"] == 25.0


# --------------------------------------------------------------------------- bulk assign by filter


def test_bulk_assign_by_filter_assigns_every_matching_batch(client, database, lead, seg):
    insert_batches(database, range(1, 26))
    insert_batches(database, [30], status="completed", assignee="olga")
    response = client.post("/api/batches/assign", json={"filter": {"status": "pending"}, "assignee": "sam"},
                           headers=lead)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["assigned"] == 25
    assert database.batches.count_documents({"assignee": "sam", "status": "assigned"}) == 25
    assert database.batches.find_one({"id": "batch_0030"})["assignee"] == "olga"


def test_bulk_assign_by_filter_keeps_the_rules(client, database, lead, seg):
    insert_batches(database, [1, 2])
    insert_batches(database, [3], status="completed", assignee="sam")
    result = client.post("/api/batches/assign", json={"filter": {}, "assignee": None}, headers=lead).get_json()
    assert result["not_assignable"] == ["batch_0003"]
    before = snapshot(database)
    assert_error(client.post("/api/batches/assign", json={"filter": {}, "assignee": "sam"}, headers=seg),
                 403, "forbidden")
    assert_error(client.post("/api/batches/assign", json={"filter": {}, "ids": ["b1"], "assignee": "sam"},
                             headers=lead), 400, "invalid_value")
    assert_error(client.post("/api/batches/assign", json={"assignee": "sam"}, headers=lead), 400, "invalid_value")
    assert_error(client.post("/api/batches/assign", json={"filter": {"status": "nope"}, "assignee": "sam"},
                             headers=lead), 400, "invalid_status")
    assert snapshot(database) == before


def test_bulk_assign_by_filter_refuses_too_many(client, database, lead, seg, monkeypatch):
    import batch_service

    monkeypatch.setattr(batch_service, "MAX_BULK_IDS", 3)
    insert_batches(database, range(1, 5))
    before = snapshot(database)
    assert_error(client.post("/api/batches/assign", json={"filter": {}, "assignee": "sam"}, headers=lead),
                 400, "too_many")
    assert snapshot(database) == before


# --------------------------------------------------------------------------- own figures, workload


def test_my_summary_counts_only_my_batches(client, lead, varied, seg):
    body = client.get("/api/me/summary", headers=seg).get_json()
    assert body["by_status"]["assigned"] == 1 and body["by_status"]["completed"] == 1
    assert body["open"] == 1 and body["done"] == 1
    assert body["masks"] == 3 and body["images"] == 8


def test_workload_counts_open_batches_per_segmenter(client, lead, varied, seg):
    assert client.get("/api/users/workload", headers=lead).get_json() == {"sam": 1, "olga": 2}
    assert_error(client.get("/api/users/workload", headers=seg), 403, "forbidden")
