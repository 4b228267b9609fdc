"""Batch HTTP API (SPEC §5, §11): list, detail, bulk assign and CSV export.

Status changes through PATCH are in test_workflow.py; identity and roles in test_auth.py.
Every test runs against the real database server of the session fixture.
"""
import csv
import io

import pytest
from itsdangerous import URLSafeSerializer

from checks import assert_error, job_result, snapshot
from factories import insert_batches, insert_mask_files, link_files

ITEM_FIELDS = {"id", "name", "assignee", "status", "mask_count", "image_count", "progress",
               "updated_at"}
ENVELOPE_FIELDS = {"items", "total", "page", "per_page", "next_cursor"}
CSV_HEADER = ["id", "name", "assignee", "status", "mask_count", "image_count", "progress",
              "updated_at"]


def ids_of(response):
    return [item["id"] for item in response.get_json()["items"]]


def walk_cursor(client, headers, query="", per_page=3, limit=50):
    """Follow next_cursor from the first page to the last; returns the pages' JSON bodies."""
    pages = []
    url = f"/api/batches?per_page={per_page}{'&' + query if query else ''}"
    for _ in range(limit):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        pages.append(body)
        if body["next_cursor"] is None:
            return pages
        url = f"/api/batches?per_page={per_page}&after={body['next_cursor']}"
        if query:
            url += "&" + query
    raise AssertionError("cursor paging did not end")


# --------------------------------------------------------------------------- list


def test_list_items_have_only_the_eight_fields(client, database, seg):
    insert_batches(database, [1, 2])
    database.batches.update_one({"id": "batch_0001"}, {"$set": {"secret_note": "x"}})

    response = client.get("/api/batches", headers=seg)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == ENVELOPE_FIELDS
    assert len(body["items"]) == 2
    for item in body["items"]:
        assert set(item) == ITEM_FIELDS
    first = body["items"][0]
    assert first["id"] == "batch_0001"
    assert first["name"] == "batch_0001"
    assert first["assignee"] is None
    assert first["status"] == "pending"
    assert first["mask_count"] == 0
    assert first["image_count"] == 4
    assert first["progress"] == 0.0
    assert isinstance(first["updated_at"], str) and first["updated_at"].endswith("Z")


def test_list_envelope_defaults(client, database, seg):
    insert_batches(database, range(1, 4))

    body = client.get("/api/batches", headers=seg).get_json()

    assert body["total"] == 3
    assert body["page"] == 1
    assert body["per_page"] == 50
    assert body["next_cursor"] is None


def test_list_progress_counts_masks_against_images(client, database, seg):
    insert_batches(database, [1], mask_count=3, image_count=4)
    insert_batches(database, [2], mask_count=9, image_count=4)

    items = client.get("/api/batches", headers=seg).get_json()["items"]

    assert [item["progress"] for item in items] == [75.0, 100.0]


def test_list_is_sorted_by_id_whatever_the_insert_order(client, database, seg):
    insert_batches(database, [5, 1, 12, 3, 2, 40])

    response = client.get("/api/batches", headers=seg)

    assert ids_of(response) == ["batch_0001", "batch_0002", "batch_0003", "batch_0005",
                                "batch_0012", "batch_0040"]


def test_ids_past_four_digits_follow_their_numbers_in_lists_cursors_and_export(client, database, seg):
    insert_batches(database, [10000, 2000, 999, 10001, 1001, 23480])
    expected = ["batch_0999", "batch_1001", "batch_2000", "batch_10000", "batch_10001", "batch_23480"]

    assert ids_of(client.get("/api/batches", headers=seg)) == expected
    seen = [item["id"] for page in walk_cursor(client, seg, per_page=2) for item in page["items"]]
    assert seen == expected
    rows = client.get("/api/export/batches.csv", headers=seg).get_data(as_text=True).splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == expected


def test_list_filters_by_status(client, database, seg):
    insert_batches(database, [1, 2])
    insert_batches(database, [3, 4], status="assigned", assignee="sam")
    insert_batches(database, [5], status="completed", assignee="olga")

    response = client.get("/api/batches?status=assigned", headers=seg)

    assert ids_of(response) == ["batch_0003", "batch_0004"]
    assert response.get_json()["total"] == 2


def test_list_filters_by_assignee_and_none_means_unassigned(client, database, seg):
    insert_batches(database, [1, 2])
    insert_batches(database, [3, 4], status="assigned", assignee="sam")
    insert_batches(database, [5], status="in_progress", assignee="olga")

    sam = client.get("/api/batches?assignee=sam", headers=seg).get_json()
    unassigned = client.get("/api/batches?assignee=none", headers=seg).get_json()
    nobody = client.get("/api/batches?assignee=ghost", headers=seg).get_json()

    assert [i["id"] for i in sam["items"]] == ["batch_0003", "batch_0004"]
    assert sam["total"] == 2
    assert [i["id"] for i in unassigned["items"]] == ["batch_0001", "batch_0002"]
    assert unassigned["total"] == 2
    assert all(i["assignee"] is None for i in unassigned["items"])
    assert nobody["items"] == [] and nobody["total"] == 0


def test_list_filters_status_and_assignee_together(client, database, seg):
    insert_batches(database, [1], status="assigned", assignee="sam")
    insert_batches(database, [2], status="in_progress", assignee="sam")
    insert_batches(database, [3], status="in_progress", assignee="olga")

    response = client.get("/api/batches?status=in_progress&assignee=sam", headers=seg)

    assert ids_of(response) == ["batch_0002"]
    assert response.get_json()["total"] == 1


def test_list_q_is_a_prefix_of_id(client, database, seg):
    insert_batches(database, [1, 2, 9, 10, 11, 100])

    response = client.get("/api/batches?q=batch_001", headers=seg)

    assert ids_of(response) == ["batch_0010", "batch_0011"]
    assert response.get_json()["total"] == 2


def test_list_q_is_a_prefix_of_the_name_or_of_a_word_not_a_substring(client, database, seg):
    insert_batches(database, [1], name="Lung scans A")
    insert_batches(database, [2], name="Liver set")
    insert_batches(database, [3], name="Lung scans B")
    insert_batches(database, [4], name="Old Lung")

    lung = client.get("/api/batches?q=Lung", headers=seg)
    word = client.get("/api/batches?q=scans", headers=seg)
    whole = client.get("/api/batches?q=lung scans b", headers=seg)
    middle = client.get("/api/batches?q=cans", headers=seg)

    assert ids_of(lung) == ["batch_0001", "batch_0003", "batch_0004"]
    assert ids_of(word) == ["batch_0001", "batch_0003"]
    assert ids_of(whole) == ["batch_0003"]
    assert ids_of(middle) == []


def test_list_q_ignores_the_case_of_names_and_finds_a_batch_by_its_reference(client, database, seg):
    insert_batches(database, [1], name="Lung scans A")
    insert_batches(database, [7, 42, 420])

    assert ids_of(client.get("/api/batches?q=lung", headers=seg)) == ["batch_0001"]
    assert ids_of(client.get("/api/batches?q=BATCH_004", headers=seg)) == ["batch_0042"]
    assert ids_of(client.get("/api/batches?q=b7", headers=seg)) == ["batch_0007"]
    assert ids_of(client.get("/api/batches?q=Batch-42", headers=seg)) == ["batch_0042"]


@pytest.mark.parametrize("q", [".*", "(", "[", "batch_000.", "^", "\\"])
def test_list_q_is_literal_not_a_regex(client, database, seg, q):
    insert_batches(database, [1, 2])

    response = client.get("/api/batches", query_string={"q": q}, headers=seg)

    assert response.status_code == 200
    assert response.get_json()["items"] == []
    assert response.get_json()["total"] == 0


def test_list_ignores_operator_shaped_query_parameters(client, database, seg):
    insert_batches(database, [1])
    insert_batches(database, [2], status="assigned", assignee="sam")

    response = client.get("/api/batches?assignee[$ne]=zzz&status[$ne]=pending", headers=seg)

    assert response.status_code == 200
    # Unknown parameters filter nothing; they are never turned into operators.
    assert ids_of(response) == ["batch_0001", "batch_0002"]


@pytest.mark.parametrize("value", ["1", "200"])
def test_list_per_page_bounds_are_accepted(client, database, seg, value):
    insert_batches(database, range(1, 4))

    body = client.get(f"/api/batches?per_page={value}", headers=seg).get_json()

    assert body["per_page"] == int(value)
    assert len(body["items"]) == min(int(value), 3)
    assert (body["next_cursor"] is None) == (int(value) >= 3)


@pytest.mark.parametrize("value", ["x", "-1", "1.0", ""])
def test_list_bad_page_is_400(client, database, seg, value):
    insert_batches(database, [1])

    response = client.get("/api/batches", query_string={"page": value}, headers=seg)

    assert_error(response, 400)


def test_list_page_numbers_slice_the_sorted_list(client, database, seg):
    insert_batches(database, [7, 3, 1, 5, 2, 6, 4])

    pages = [client.get(f"/api/batches?per_page=3&page={n}", headers=seg).get_json()
             for n in (1, 2, 3, 4)]

    assert [[i["id"][-1] for i in p["items"]] for p in pages] == [
        ["1", "2", "3"], ["4", "5", "6"], ["7"], []]
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    assert all(p["total"] == 7 for p in pages)
    assert pages[0]["next_cursor"] is not None
    assert pages[2]["next_cursor"] is None
    assert pages[3]["next_cursor"] is None


@pytest.mark.parametrize("count", [7, 6, 1])
def test_cursor_paging_walks_every_batch_exactly_once(client, database, seg, count):
    expected = insert_batches(database, range(count, 0, -1))
    expected.sort()

    pages = walk_cursor(client, seg, per_page=3)

    seen = [item["id"] for page in pages for item in page["items"]]
    assert seen == expected
    assert len(pages) == (count + 2) // 3
    assert [page["page"] for page in pages] == list(range(1, len(pages) + 1))
    assert all(page["total"] == count for page in pages)
    assert all(page["per_page"] == 3 for page in pages)
    assert all(page["next_cursor"] is not None for page in pages[:-1])
    assert pages[-1]["next_cursor"] is None


def test_cursor_paging_with_filters(client, database, seg):
    insert_batches(database, [1, 3, 5, 7, 9], status="assigned", assignee="sam")
    insert_batches(database, [2, 4, 6, 8])
    insert_batches(database, [10], status="assigned", assignee="olga")

    pages = walk_cursor(client, seg, query="status=assigned&assignee=sam", per_page=2)

    seen = [item["id"] for page in pages for item in page["items"]]
    assert seen == ["batch_0001", "batch_0003", "batch_0005", "batch_0007", "batch_0009"]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all(page["total"] == 5 for page in pages)


def test_page_paging_with_q_filter(client, database, seg):
    insert_batches(database, range(1, 13))

    body = client.get("/api/batches?q=batch_001&per_page=2&page=2", headers=seg).get_json()

    assert [i["id"] for i in body["items"]] == ["batch_0012"]
    assert body["total"] == 3
    assert body["next_cursor"] is None


@pytest.mark.parametrize("garbage", ["....", "x" * 600, "%00", "W10.abc"])
def test_garbage_cursor_is_400(client, database, seg, garbage):
    insert_batches(database, range(1, 3))

    response = client.get("/api/batches", query_string={"after": garbage}, headers=seg)

    assert_error(response, 400)


@pytest.mark.parametrize("payload", [["batch_0001", "2"], 5, ["batch_0001"]])
def test_well_signed_cursor_with_a_bad_payload_is_400(client, database, seg, payload):
    insert_batches(database, range(1, 3))
    forged = URLSafeSerializer("test-secret", salt="segdash.cursor").dumps(payload)

    response = client.get("/api/batches", query_string={"after": forged}, headers=seg)

    assert_error(response, 400)


def test_lists_reflect_writes_made_through_the_api(client, database, lead, seg):
    insert_batches(database, [1, 2])
    assert client.get("/api/batches?status=assigned", headers=lead).get_json()["total"] == 0

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=lead)
    assert response.status_code == 200

    body = client.get("/api/batches?status=assigned", headers=seg).get_json()
    assert body["total"] == 1
    assert [i["id"] for i in body["items"]] == ["batch_0001"]


# --------------------------------------------------------------------------- detail


def test_detail_lists_masks_with_only_their_public_fields(client, database, seg):
    insert_batches(database, [7])
    file_ids = insert_mask_files(database, ["b7/img_0002.png", "b7/img_0001.png"],
                                 metadata={"batch_id": "batch_0007"})
    link_files(database, "batch_0007", file_ids)

    response = client.get("/api/batches/batch_0007", headers=seg)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == "batch_0007"
    assert body["mask_count"] == 2
    assert body["progress"] == 50.0
    assert "_id" not in body and "mask_files" not in body
    assert [mask["filename"] for mask in body["masks"]] == ["b7/img_0001.png", "b7/img_0002.png"]
    by_name = {mask["filename"]: mask for mask in body["masks"]}
    stored = {doc["filename"]: doc for doc in database["masks.files"].find()}
    for name, mask in by_name.items():
        assert list(mask) == ["id", "version", "filename", "length", "uploadDate", "uploaded_by", "created_at",
                              "version_count", "older_versions"]
        assert (mask["version"], mask["version_count"], mask["older_versions"]) == (1, 1, [])
        assert mask["uploaded_by"] == "seed"
        assert mask["id"] == str(stored[name]["_id"])
        assert mask["length"] == stored[name]["length"]
        assert isinstance(mask["uploadDate"], str) and mask["uploadDate"].endswith("Z")


def test_detail_of_a_batch_without_masks(client, database, seg):
    insert_batches(database, [1])

    body = client.get("/api/batches/batch_0001", headers=seg).get_json()

    assert body["masks"] == []
    assert body["status"] == "pending"
    assert body["metadata"]["source"] == "manual"
    assert body["metadata"]["created_at"].endswith("Z")
    assert body["metadata"]["started_at"] is None


@pytest.mark.parametrize("raw", ["Batch-7", "b7", "B0007", "7", "batch_7", "BATCH.0007", "batch 7"])
def test_detail_resolves_non_canonical_ids(client, database, seg, raw):
    insert_batches(database, [7, 70])

    response = client.get(f"/api/batches/{raw}", headers=seg)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["id"] == "batch_0007"


@pytest.mark.parametrize("raw", ["batch_9999", "b8", "nonsense", "batch_0007x", "7/8", "%24ne",
                                 "1" * 40])
def test_detail_of_an_unknown_batch_is_404_json(client, database, seg, raw):
    insert_batches(database, [7])

    response = client.get(f"/api/batches/{raw}", headers=seg)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("raw", ["1" * 5000, "b" + "0" * 4400 + "7", "batch_" + "9" * 4301])
def test_detail_of_a_huge_number_is_404_not_500(client, database, seg, raw):
    insert_batches(database, [7])

    response = client.get(f"/api/batches/{raw}", headers=seg)

    assert_error(response, 404, "not_found")


def test_patch_of_a_huge_number_is_404_and_changes_nothing(client, database, lead):
    insert_batches(database, [7])
    before = snapshot(database)

    response = client.patch("/api/batches/" + "7" * 5000, json={"status": "in_progress"},
                            headers=lead)

    assert_error(response, 404, "not_found")
    assert snapshot(database) == before


def test_a_file_named_with_a_huge_number_does_not_break_sync(client, database, lead, runner):
    insert_batches(database, [1])
    insert_mask_files(database, ["b" + "1" * 5000 + ".png", "b1/img_0001.png"])

    check = client.get("/api/check-mongo-files", headers=lead)
    sync = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))

    assert check.status_code == 200, check.get_data(as_text=True)
    assert sync["files_linked"] == 1
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 1


def test_unsupported_method_is_405_json(client, database, lead):
    insert_batches(database, [1])
    before = snapshot(database)

    response = client.delete("/api/batches/batch_0001", headers=lead)

    assert_error(response, 405)
    assert "PATCH" in response.headers["Allow"]
    assert snapshot(database) == before


# --------------------------------------------------------------------------- bulk assign


def test_bulk_assign_assigns_every_listed_batch(client, database, lead, seg):
    insert_batches(database, range(1, 6))

    response = client.post("/api/batches/assign",
                           json={"ids": ["batch_0001", "b2", "Batch-3"], "assignee": "sam"},
                           headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["assigned"] == 3
    assert body["assignee"] == "sam"
    assert body["not_found"] == [] and body["not_assignable"] == [] and body["unchanged"] == []
    docs = {d["id"]: d for d in database.batches.find()}
    for batch_id in ("batch_0001", "batch_0002", "batch_0003"):
        assert docs[batch_id]["assignee"] == "sam"
        assert docs[batch_id]["status"] == "assigned"
        assert docs[batch_id]["metadata"]["assigned_at"] is not None
    for batch_id in ("batch_0004", "batch_0005"):
        assert docs[batch_id]["assignee"] is None
        assert docs[batch_id]["status"] == "pending"


def test_bulk_assign_is_one_bulk_write(client, database, lead, seg, commands):
    insert_batches(database, range(1, 21))
    commands.clear()

    response = client.post("/api/batches/assign",
                           json={"ids": [f"batch_{n:04d}" for n in range(1, 21)], "assignee": "sam"},
                           headers=lead)

    assert response.status_code == 200
    assert response.get_json()["assigned"] == 20
    batch_writes = [c for c in commands.snapshot()
                    if c["collection"] == "batches"
                    and c["name"] in ("update", "insert", "delete", "findAndModify", "bulkWrite")]
    assert len(batch_writes) == 1
    assert database.batches.count_documents({"assignee": "sam", "status": "assigned"}) == 20


def test_bulk_assign_reports_not_found_not_assignable_and_unchanged(client, database, lead, seg,
                                                                    other_seg):
    insert_batches(database, [1, 2])
    insert_batches(database, [3], status="assigned", assignee="sam")
    insert_batches(database, [4], status="completed", assignee="olga")
    insert_batches(database, [5], status="reviewed", assignee="olga")
    insert_batches(database, [6], status="in_progress", assignee="olga")
    before = {d["id"]: d for d in snapshot(database)}

    response = client.post("/api/batches/assign",
                           json={"ids": ["batch_0001", "batch_0003", "batch_0004", "batch_0005",
                                         "batch_0006", "batch_0099", "b1"],
                                 "assignee": "sam"},
                           headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["assigned"] == 2
    assert body["unchanged"] == ["batch_0003"]
    assert body["not_found"] == ["batch_0099"]
    assert sorted(body["not_assignable"]) == ["batch_0004", "batch_0005"]
    after = {d["id"]: d for d in snapshot(database)}
    assert after["batch_0001"]["assignee"] == "sam" and after["batch_0001"]["status"] == "assigned"
    assert after["batch_0006"]["assignee"] == "sam" and after["batch_0006"]["status"] == "assigned"
    for unchanged in ("batch_0002", "batch_0003", "batch_0004", "batch_0005"):
        assert after[unchanged] == before[unchanged]
    assert "batch_0099" not in after


def test_bulk_assign_null_unassigns(client, database, lead, seg):
    insert_batches(database, [1, 2], status="assigned", assignee="sam")
    insert_batches(database, [3], status="in_progress", assignee="sam")
    insert_batches(database, [4])

    response = client.post("/api/batches/assign",
                           json={"ids": ["batch_0001", "batch_0003", "batch_0004"],
                                 "assignee": None},
                           headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["assigned"] == 2
    assert body["assignee"] is None
    assert body["unchanged"] == ["batch_0004"]
    docs = {d["id"]: d for d in snapshot(database)}
    assert (docs["batch_0001"]["assignee"], docs["batch_0001"]["status"]) == (None, "pending")
    assert (docs["batch_0003"]["assignee"], docs["batch_0003"]["status"]) == (None, "pending")
    assert (docs["batch_0002"]["assignee"], docs["batch_0002"]["status"]) == ("sam", "assigned")


@pytest.mark.parametrize("ids", [
    ["batch_0001", "not-a-batch"],
    ["batch_0001", 2],
    ["batch_0001", None],
    ["batch_0001", {"$ne": None}],
    ["batch_0001", ["batch_0002"]],
    ["batch_0001", "b" + "1" * 70],
    ["batch_0001", ""],
])
def test_bulk_assign_with_an_invalid_id_is_400_and_changes_nothing(client, database, lead, seg,
                                                                   ids):
    insert_batches(database, [1, 2])
    before = snapshot(database)

    response = client.post("/api/batches/assign", json={"ids": ids, "assignee": "sam"}, headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("ids", [{"$in": ["batch_0001"]}, 1, {}])
def test_bulk_assign_ids_must_be_a_non_empty_list(client, database, lead, seg, ids):
    insert_batches(database, [1])
    before = snapshot(database)

    response = client.post("/api/batches/assign", json={"ids": ids, "assignee": "sam"}, headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


def test_bulk_assign_too_many_ids_is_400(client, database, lead, seg):
    insert_batches(database, [1])
    before = snapshot(database)

    response = client.post("/api/batches/assign",
                           json={"ids": ["batch_0001"] * 5001, "assignee": "sam"}, headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("body", [
    {"ids": ["batch_0001"], "assignee": 5},
    {"ids": ["batch_0001"], "assignee": ["sam"]},
    {"ids": ["batch_0001"], "assignee": ""},
    {"ids": ["batch_0001"], "assignee": "lead1"},
    {"ids": ["batch_0001"], "assignee": "sam", "$set": {"status": "reviewed"}},
])
def test_bulk_assign_bad_body_is_400_and_changes_nothing(client, database, lead, seg, body):
    insert_batches(database, [1])
    before = snapshot(database)

    response = client.post("/api/batches/assign", json=body, headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("data,content_type", [
    ('{"ids": ["batch_0001"], "assignee": "sam"}', "text/plain"),
])
def test_bulk_assign_malformed_body_is_400(client, database, lead, seg, data, content_type):
    insert_batches(database, [1])
    before = snapshot(database)

    response = client.post("/api/batches/assign", data=data, content_type=content_type,
                           headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


# --------------------------------------------------------------------------- CSV export


def read_csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_export_has_a_header_and_one_row_per_batch_in_id_order(client, database, seg):
    insert_batches(database, [3, 1, 2])
    database.batches.update_one({"id": "batch_0002"},
                                {"$set": {"assignee": "sam", "status": "assigned",
                                          "mask_count": 2}})

    response = client.get("/api/export/batches.csv", headers=seg)
    rows = read_csv(response)

    assert "attachment" in response.headers["Content-Disposition"]
    assert rows[0] == CSV_HEADER
    assert [row[0] for row in rows[1:]] == ["batch_0001", "batch_0002", "batch_0003"]
    row = dict(zip(CSV_HEADER, rows[2]))
    assert row["name"] == "batch_0002"
    assert row["assignee"] == "sam"
    assert row["status"] == "assigned"
    assert row["mask_count"] == "2"
    assert row["image_count"] == "4"
    assert float(row["progress"]) == 50.0
    assert row["updated_at"].endswith("Z")
    assert dict(zip(CSV_HEADER, rows[1]))["assignee"] == ""


def test_export_of_nothing_is_just_the_header(client, database, seg):
    rows = read_csv(client.get("/api/export/batches.csv", headers=seg))

    assert rows == [CSV_HEADER]


def test_export_honours_the_list_filters(client, database, seg):
    insert_batches(database, [1, 2])
    insert_batches(database, [3, 4], status="assigned", assignee="sam")
    insert_batches(database, [5], status="assigned", assignee="olga")
    insert_batches(database, [11], status="assigned", assignee="sam")

    by_status = read_csv(client.get("/api/export/batches.csv?status=assigned&assignee=sam",
                                    headers=seg))
    unassigned = read_csv(client.get("/api/export/batches.csv?assignee=none", headers=seg))
    by_prefix = read_csv(client.get("/api/export/batches.csv?q=batch_001", headers=seg))

    assert [row[0] for row in by_status[1:]] == ["batch_0003", "batch_0004", "batch_0011"]
    assert [row[0] for row in unassigned[1:]] == ["batch_0001", "batch_0002"]
    assert [row[0] for row in by_prefix[1:]] == ["batch_0011"]


def test_export_rejects_bad_filters(client, database, seg):
    insert_batches(database, [1])

    assert_error(client.get("/api/export/batches.csv?status=bogus", headers=seg), 400)


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_export_neutralises_formula_cells(client, database, seg, name):
    insert_batches(database, [1], name=name)
    insert_batches(database, [2], name="Plain name")

    rows = read_csv(client.get("/api/export/batches.csv", headers=seg))

    cell = dict(zip(CSV_HEADER, rows[1]))["name"]
    assert cell == "'" + name
    assert dict(zip(CSV_HEADER, rows[2]))["name"] == "Plain name"
