"""Mask upload and download through GridFS (SPEC §3, §5 POST/GET /api/masks, §11)."""
import hashlib
import io
import math
import os
import re
import threading

import pytest
from bson import ObjectId

from checks import job_result
from factories import assert_records_consistent, insert_batches, insert_mask_files, records_of
from helpers import build_app

MASKS = "/api/masks"
CHUNK_SIZE = 255 * 1024  # GridFS default chunk size


def upload(client, headers, content, filename="mask.png", batch_id=None, form_filename=None):
    data = {"file": (io.BytesIO(content), filename)}
    if batch_id is not None:
        data["batch_id"] = batch_id
    if form_filename is not None:
        data["filename"] = form_filename
    return client.post(MASKS, headers=headers, data=data, content_type="multipart/form-data")


def stored_counts(database):
    return database["masks.files"].count_documents({}), database["masks.chunks"].count_documents({})


def png_bytes(tag, size=2000):
    seed = hashlib.sha256(tag.encode()).digest()
    return (b"\x89PNG\r\n\x1a\n" + seed * (size // len(seed) + 1))[:size]


# ---------------------------------------------------------------- upload


def test_upload_stores_file_in_gridfs(client, database, lead):
    content = png_bytes("one")
    response = upload(client, lead, content, "mask_001.png")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"id", "filename", "length", "sha256", "batch_id", "deduplicated"}
    assert ObjectId.is_valid(body["id"])
    assert body["filename"] == "mask_001.png"
    assert body["length"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["batch_id"] is None
    assert body["version"] is None
    assert body["deduplicated"] is False

    doc = database["masks.files"].find_one({"_id": ObjectId(body["id"])})
    assert doc["filename"] == "mask_001.png"
    assert doc["length"] == len(content)
    assert doc["metadata"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["metadata"]["uploaded_by"] == "lead1"
    assert "batch_id" not in doc["metadata"]
    assert database.mask_records.count_documents({}) == 0  # stored unlinked: sync links it by name
    chunks = list(database["masks.chunks"].find({"files_id": doc["_id"]}).sort("n", 1))
    assert b"".join(c["data"] for c in chunks) == content
    assert stored_counts(database) == (1, 1)


def test_same_bytes_and_name_in_one_batch_are_stored_once(client, database, lead, seg):
    insert_batches(database, [3], assignee="sam", status="in_progress")
    content = png_bytes("dup", 5000)
    first = upload(client, seg, content, "img_1.png", batch_id="batch_0003")
    assert first.status_code == 201
    first = first.get_json()
    assert (first["version"], first["deduplicated"]) == (1, False)
    counts = stored_counts(database)

    for name in ("img_1.png", "other_dir/IMG_1.PNG"):
        response = upload(client, seg, content, name, batch_id="batch_0003")
        assert response.status_code == 200
        again = response.get_json()
        assert again == {**first, "deduplicated": True}
    assert stored_counts(database) == counts == (1, 1)
    assert database.batches.find_one({"id": "batch_0003"})["mask_count"] == 1
    assert_records_consistent(database)


def test_uploads_without_a_batch_are_never_answered_with_another_file(client, database, lead):
    content = png_bytes("loose", 5000)
    first = upload(client, lead, content, "first.png").get_json()
    second = upload(client, lead, content, "second_name.png")
    assert second.status_code == 201
    second = second.get_json()
    assert second["id"] != first["id"] and second["filename"] == "second_name.png"
    assert second["deduplicated"] is False
    assert stored_counts(database) == (2, 2)


def test_deduplicated_multi_chunk_upload_leaves_no_orphan_chunks(client, database, lead):
    insert_batches(database, [1])
    content = os.urandom(700 * 1024)
    first = upload(client, lead, content, "big.png", batch_id="batch_0001").get_json()
    counts = stored_counts(database)
    assert counts == (1, math.ceil(len(content) / CHUNK_SIZE))
    again = upload(client, lead, content, "big.png", batch_id="batch_0001").get_json()
    assert again["id"] == first["id"] and again["deduplicated"] is True
    assert stored_counts(database) == counts
    assert database["masks.chunks"].count_documents({"files_id": {"$ne": ObjectId(first["id"])}}) == 0


def test_different_bytes_are_not_deduplicated(client, database, lead):
    a = upload(client, lead, png_bytes("a"), "same_name.png").get_json()
    b = upload(client, lead, png_bytes("b"), "same_name.png").get_json()
    assert a["id"] != b["id"]
    assert not a["deduplicated"] and not b["deduplicated"]
    assert stored_counts(database) == (2, 2)


def test_upload_with_batch_links_it(client, database, lead, runner):
    insert_batches(database, [7])
    response = upload(client, lead, png_bytes("x"), "img_3.png", batch_id="Batch-7")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["batch_id"] == "batch_0007" and body["version"] == 1
    file_id = ObjectId(body["id"])
    doc = database.batches.find_one({"id": "batch_0007"})
    assert doc["mask_count"] == 1 and "mask_files" not in doc
    assert records_of(database, "batch_0007") == {"img_3.png": [(1, True, file_id)]}
    record = database.mask_records.find_one({"file_id": file_id})
    assert (record["name"], record["uploaded_by"], record["sha256"]) == ("img_3.png", "lead1", body["sha256"])
    meta = database["masks.files"].find_one({"_id": file_id})["metadata"]
    assert meta["batch_id"] == "batch_0007" and "linked_at" not in meta  # the file is not written to link it

    second = upload(client, lead, png_bytes("y"), "img_4.png", batch_id="batch_0007").get_json()
    assert database.batches.find_one({"id": "batch_0007"})["mask_count"] == 2

    # The batch detail shows the new masks at once.
    detail = client.get("/api/batches/batch_0007", headers=lead).get_json()
    assert detail["mask_count"] == 2
    assert [m["filename"] for m in detail["masks"]] == ["img_3.png", "img_4.png"]
    assert detail["masks"][1]["id"] == second["id"]

    # An uploaded and linked file is not touched by sync.
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_scanned"] == 0 and result["files_linked"] == 0
    assert database.batches.find_one({"id": "batch_0007"})["mask_count"] == 2
    assert_records_consistent(database)


def test_upload_of_an_unlinked_files_bytes_never_moves_or_reveals_it(client, database, lead, seg):
    insert_batches(database, [8], assignee="sam", status="in_progress")
    content = png_bytes("later-linked")
    loose = upload(client, lead, content, "secret/loose.png").get_json()
    assert loose["batch_id"] is None
    mine = upload(client, seg, content, "mine.png", batch_id="batch_0008")
    assert mine.status_code == 201
    mine = mine.get_json()
    assert mine["id"] != loose["id"]
    assert (mine["filename"], mine["batch_id"], mine["deduplicated"]) == ("mine.png", "batch_0008", False)
    assert "secret" not in str(mine)
    assert database.mask_records.find_one({"file_id": ObjectId(loose["id"])}) is None
    assert "batch_id" not in database["masks.files"].find_one({"_id": ObjectId(loose["id"])})["metadata"]
    assert database.batches.find_one({"id": "batch_0008"})["mask_count"] == 1
    assert stored_counts(database) == (2, 2)


def test_identical_bytes_in_two_batches_are_two_masks(client, database, seg, other_seg):
    insert_batches(database, [1], assignee="sam", status="in_progress")
    insert_batches(database, [2], assignee="olga", status="in_progress")
    background = b"\x89PNG all background" + bytes(4000)
    first = upload(client, seg, background, "img_1.png", batch_id="batch_0001").get_json()
    second = upload(client, other_seg, background, "img_1.png", batch_id="batch_0002")
    assert second.status_code == 201
    second = second.get_json()
    assert second["id"] != first["id"]
    assert (second["batch_id"], second["deduplicated"], second["version"]) == ("batch_0002", False, 1)
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 1
    assert database.batches.find_one({"id": "batch_0002"})["mask_count"] == 1
    assert [m["id"] for m in client.get("/api/batches/batch_0002", headers=other_seg).get_json()["masks"]] \
        == [second["id"]]
    assert_records_consistent(database)


def test_reupload_of_a_name_replaces_it_and_keeps_the_old_version(client, database, seg, lead):
    insert_batches(database, [5], assignee="sam", status="in_progress", image_count=5)
    first = {i: upload(client, seg, png_bytes(f"v1-{i}"), f"img_{i}.png", batch_id="batch_0005").get_json()
             for i in range(5)}
    corrected = {i: upload(client, seg, png_bytes(f"v2-{i}"), f"fixed/IMG_{i}.png", batch_id="batch_0005")
                 for i in range(3)}
    for i, response in corrected.items():
        assert response.status_code == 201
        assert response.get_json()["version"] == 2 and response.get_json()["id"] != first[i]["id"]
    listing = client.get("/api/batches?q=batch_0005", headers=lead).get_json()["items"][0]
    assert (listing["mask_count"], listing["image_count"], listing["progress"]) == (5, 5, 100.0)

    detail = client.get("/api/batches/batch_0005", headers=seg).get_json()
    assert detail["mask_count"] == 5 and len(detail["masks"]) == 5
    by_version = {m["version"]: m for m in detail["masks"]}
    assert set(by_version) == {1, 2}
    replaced = [m for m in detail["masks"] if m["version"] == 2]
    assert len(replaced) == 3
    for mask in replaced:
        assert mask["version_count"] == 2 and mask["uploaded_by"] == "sam"
        (older,) = mask["older_versions"]
        assert older["version"] == 1 and older["uploaded_by"] == "sam" and older["created_at"]
        old_file = client.get(f"{MASKS}/{older['id']}", headers=seg)
        assert old_file.status_code == 200  # older versions stay downloadable
    assert_records_consistent(database)


def test_the_database_refuses_a_second_current_version(app, database):
    """The rule is an index, not only Python: a direct write of a second current version fails."""
    from pymongo.errors import DuplicateKeyError

    insert_batches(database, [1])
    a, b = insert_mask_files(database, ["x/img.png", "y/IMG.png"])
    import mask_records

    with app.app_context():
        files = {d["_id"]: d for d in database["masks.files"].find()}
        database.mask_records.insert_one(mask_records.new_record("batch_0001", files[a], 1, True, None))
        with pytest.raises(DuplicateKeyError):
            database.mask_records.insert_one(mask_records.new_record("batch_0001", files[b], 2, True, None))
        with pytest.raises(DuplicateKeyError):
            database.mask_records.insert_one(mask_records.new_record("batch_0001", files[b], 1, False, None))
        with pytest.raises(DuplicateKeyError):
            database.mask_records.insert_one(mask_records.new_record("batch_0002", files[a], 1, True, None))


def _upload_concurrently(app, headers, payloads, batch_id):
    """Each (content, name) uploaded by its own thread and client, released together."""
    barrier = threading.Barrier(len(payloads))
    results = [None] * len(payloads)

    def worker(index):
        content, name = payloads[index]
        own = app.test_client()
        barrier.wait()
        try:
            response = upload(own, headers, content, name, batch_id=batch_id)
            results[index] = (response.status_code, response.get_json())
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = (None, repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_uploads_of_one_name_leave_one_current_version(app, database, lead):
    insert_batches(database, [4])
    payloads = [(png_bytes(f"race-{i}"), f"dir{i}/Img_7.png") for i in range(6)]
    results = _upload_concurrently(app, lead, payloads, "batch_0004")
    assert all(status == 201 for status, _ in results), results
    versions = sorted(body["version"] for _, body in results)
    assert versions == [1, 2, 3, 4, 5, 6]
    (history,) = records_of(database, "batch_0004").values()
    assert [v for v, _c, _f in history] == [1, 2, 3, 4, 5, 6]
    assert sum(1 for _v, current, _f in history if current) == 1
    assert database.batches.find_one({"id": "batch_0004"})["mask_count"] == 1
    assert_records_consistent(database)


def test_concurrent_identical_uploads_store_one_copy(app, database, lead):
    insert_batches(database, [6])
    content = png_bytes("same", 3000)
    results = _upload_concurrently(app, lead, [(content, "img_1.png")] * 5, "batch_0006")
    assert all(status in (200, 201) for status, _ in results), results
    ids = {body["id"] for _, body in results}
    assert len(ids) == 1
    assert sum(1 for _, body in results if not body["deduplicated"]) == 1
    assert stored_counts(database) == (1, 1)
    assert database.batches.find_one({"id": "batch_0006"})["mask_count"] == 1
    assert_records_consistent(database)


def test_segmenter_uploads_to_own_batch_only(client, database, seg, other_seg):
    insert_batches(database, [1], assignee="sam", status="in_progress")
    insert_batches(database, [2], assignee="olga", status="assigned")
    insert_batches(database, [3])  # unassigned

    ok = upload(client, seg, png_bytes("mine"), "m.png", batch_id="batch_0001")
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert ok.get_json()["batch_id"] == "batch_0001"
    meta = database["masks.files"].find_one({"_id": ObjectId(ok.get_json()["id"])})["metadata"]
    assert meta["uploaded_by"] == "sam"
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 1
    counts = stored_counts(database)

    for batch_id in ("batch_0002", "batch_0003"):
        refused = upload(client, seg, png_bytes("theirs" + batch_id), "t.png", batch_id=batch_id)
        assert refused.status_code == 403
        assert refused.get_json()["error"] == "forbidden"
    missing = upload(client, seg, png_bytes("nowhere"), "n.png")
    assert missing.status_code == 400
    assert missing.get_json()["error"] == "missing_batch_id"
    assert stored_counts(database) == counts
    assert database.batches.find_one({"id": "batch_0002"})["mask_count"] == 0
    assert database.batches.find_one({"id": "batch_0003"})["mask_count"] == 0


@pytest.mark.parametrize("status", ["completed", "reviewed"])
def test_segmenter_cannot_upload_to_a_handed_in_batch_but_a_lead_can(client, database, seg, lead, status):
    insert_batches(database, [4], assignee="sam", status=status)
    counts = stored_counts(database)
    refused = upload(client, seg, png_bytes("late"), "late.png", batch_id="batch_0004")
    assert refused.status_code == 409 and refused.get_json()["error"] == "batch_closed"
    assert stored_counts(database) == counts
    accepted = upload(client, lead, png_bytes("late"), "late.png", batch_id="batch_0004")
    assert accepted.status_code == 201
    assert database.batches.find_one({"id": "batch_0004"})["mask_count"] == 1


def test_upload_to_unknown_batch_is_404(client, database, lead):
    response = upload(client, lead, png_bytes("z"), "z.png", batch_id="batch_0404")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert stored_counts(database) == (0, 0)


@pytest.mark.parametrize("batch_id", ["not-a-batch", "batch_", "x" * 100, '{"$ne": null}', "b7; drop",
                                      "batch_0001\x00"])
def test_upload_with_invalid_batch_id_is_400(client, database, lead, batch_id):
    insert_batches(database, [1])
    response = upload(client, lead, png_bytes("q"), "q.png", batch_id=batch_id)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_batch_id"
    assert stored_counts(database) == (0, 0)


def test_upload_needs_identity(client, database):
    response = upload(client, {}, png_bytes("anon"), "a.png")
    assert response.status_code == 401
    assert stored_counts(database) == (0, 0)


def test_empty_file_is_refused(client, database, lead):
    insert_batches(database, [1])
    response = upload(client, lead, b"", "empty.png", batch_id="batch_0001")
    assert response.status_code == 400
    assert response.get_json()["error"] == "empty_file"
    assert stored_counts(database) == (0, 0)
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 0


def test_missing_file_field_is_refused(client, database, lead):
    response = client.post(MASKS, headers=lead, data={"batch_id": "batch_0001"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_file"
    response = client.post(MASKS, headers=lead, json={"file": "abc"})
    assert response.status_code == 400
    assert stored_counts(database) == (0, 0)


@pytest.fixture
def small_app(mongo_uri, db_name, app):
    """A second app on the test's database (its indexes made by `app`) with a 1 MiB upload limit."""
    return build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1024 * 1024)


def test_oversized_upload_is_413_json(small_app, database, lead):
    insert_batches(database, [1])
    client = small_app.test_client()
    response = upload(client, lead, os.urandom(1024 * 1024 + 4096), "huge.png", batch_id="batch_0001")
    assert response.status_code == 413
    assert response.is_json
    body = response.get_json()
    assert body["error"] == "request_entity_too_large"
    assert "1 MB" in body["message"]
    assert stored_counts(database) == (0, 0)
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 0
    # Just below the limit is fine.
    ok = upload(client, lead, os.urandom(1024 * 1024 - 4096), "fits.png")
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert stored_counts(database)[0] == 1


def test_413_message_with_a_limit_below_one_megabyte(mongo_uri, db_name, app, database, lead):
    tiny = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1000)  # on `app`'s database
    response = upload(tiny.test_client(), lead, os.urandom(5000), "x.png")
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert stored_counts(database) == (0, 0)


def _assert_safe(name):
    assert isinstance(name, str) and name
    assert len(name) <= 255
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    segments = re.split(r"[/\\]", name)
    assert ".." not in segments and "." not in segments
    assert not name.startswith(("/", "\\"))
    assert not re.match(r"^[A-Za-z]:", name)
    assert "<" not in name and ">" not in name


HOSTILE = [
    "../../etc/passwd",
    "a\x00b.png",
    "..\\..\\win.ini",
    "/etc/shadow",
    "C:\\Windows\\system32\\x.png",
    "a" * 1000 + ".png",
    "dir/" * 300 + "m.png",
    "маска_ü_日本.png",
    "<script>.png",
    "<script>alert(1)</script>.png",
    "tab\there\r\nnewline.png",
    "ok/../../x.png",
    "./.hidden/./x.png",
    "\u202emask.png",
]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("via", ["multipart", "form"])
def test_hostile_filenames_are_sanitised_or_refused(client, database, lead, name, via):
    content = png_bytes("hostile" + via + name)
    if via == "multipart":
        response = upload(client, lead, content, name)
    else:
        response = upload(client, lead, content, "placeholder.png", form_filename=name)
    if response.status_code == 400:
        assert response.get_json()["error"]
        assert stored_counts(database) == (0, 0)
        return
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    stored = database["masks.files"].find_one({"_id": ObjectId(body["id"])})["filename"]
    assert stored == body["filename"]
    _assert_safe(stored)
    download = client.get(f"{MASKS}/{body['id']}", headers=lead)
    assert download.status_code == 200
    assert download.data == content
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "\n" not in disposition and "\r" not in disposition and "/" not in disposition.split("filename", 1)[1]


@pytest.mark.parametrize("via", ["multipart", "form"])
def test_sanitised_names_keep_what_is_safe(client, database, lead, via):
    def stored_name(name, tag):
        content = png_bytes(tag + via)
        if via == "multipart":
            response = upload(client, lead, content, name)
        else:
            response = upload(client, lead, content, "placeholder.png", form_filename=name)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["filename"]

    assert stored_name("batch_0007/img_3.png", "keep-dir") == "batch_0007/img_3.png"
    if via == "form":
        # (In a multipart filename Werkzeug reads a backslash as a quoted-string escape and drops it,
        # so Windows paths survive only in the 'filename' form field.)
        assert stored_name("export\\batch_0007\\x.png", "backslash") == "export/batch_0007/x.png"
    assert stored_name("маска_ü_日本.png", "unicode") == "маска_ü_日本.png"
    assert stored_name("../../etc/passwd", "traversal") == "etc/passwd"
    assert stored_name("a\x00b.png", "nul") == "ab.png"
    long_name = stored_name("a" * 1000 + ".png", "long")
    assert long_name.endswith(".png") and len(long_name) <= 255 and set(long_name[:-4]) == {"a"}
    deep = stored_name("dir/" * 300 + "m.png", "deep")
    assert deep.endswith("/m.png") and len(deep) <= 255 and not deep.startswith("/")


@pytest.mark.parametrize("name", ["..", "../..", "/", "\x00\x01", "...", " . / .. "])
def test_names_with_nothing_usable_are_refused(client, database, lead, name):
    response = upload(client, lead, png_bytes("nothing" + name), "x.png", form_filename=name)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_filename"
    assert stored_counts(database) == (0, 0)


def test_filename_naming_a_batch_is_linked_by_sync_after_sanitising(client, database, lead, runner):
    insert_batches(database, [12])
    body = upload(client, lead, png_bytes("s"), "x.png", form_filename="..\\export\\batch_0012\\x.png").get_json()
    assert body["filename"] == "export/batch_0012/x.png"
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_linked"] == 1
    assert records_of(database, "batch_0012") == {"x.png": [(1, True, ObjectId(body["id"]))]}


# ---------------------------------------------------------------- download


def test_download_streams_back_the_exact_bytes(client, database, lead, seg):
    content = png_bytes("download", 3333)
    body = upload(client, lead, content, "folder/mask_9.png").get_json()
    response = client.get(f"{MASKS}/{body['id']}", headers=seg)
    assert response.status_code == 200
    assert response.data == content
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "mask_9.png" in response.headers["Content-Disposition"]
    assert response.mimetype == "image/png"


def test_multi_chunk_upload_round_trips_byte_exact(client, database, lead):
    content = os.urandom(600 * 1024)
    response = upload(client, lead, content, "big_mask.png")
    assert response.status_code == 201
    body = response.get_json()
    assert body["length"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    file_id = ObjectId(body["id"])
    assert database["masks.chunks"].count_documents({"files_id": file_id}) == math.ceil(len(content) / CHUNK_SIZE)
    download = client.get(f"{MASKS}/{body['id']}", headers=lead)
    assert download.status_code == 200
    assert len(download.data) == len(content)
    assert hashlib.sha256(download.data).hexdigest() == body["sha256"]
    assert download.data == content


def test_download_of_a_seeded_file(client, database, lead):
    (file_id,) = insert_mask_files(database, ["batch_0001/seed.png"])
    chunk = database["masks.chunks"].find_one({"files_id": file_id})
    response = client.get(f"{MASKS}/{file_id}", headers=lead)
    assert response.status_code == 200
    assert response.data == chunk["data"]


@pytest.mark.parametrize("file_id", [str(ObjectId()), "nope", "0" * 24, "z" * 24, "1234", "x" * 500])
def test_download_of_unknown_or_invalid_id_is_404_json(client, lead, file_id):
    response = client.get(f"{MASKS}/{file_id}", headers=lead)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"


def test_download_answers_304_for_a_matching_etag(client, lead):
    content = png_bytes("etag")
    body = upload(client, lead, content, "e.png").get_json()
    first = client.get(f"{MASKS}/{body['id']}", headers=lead)
    assert first.headers["ETag"].strip('"') == hashlib.sha256(content).hexdigest()
    again = client.get(f"{MASKS}/{body['id']}", headers={**lead, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""


# ---------------------------------------------------------------- linking races and crash safety


def test_upload_to_batch_is_crash_safe(client, database, lead, commands, runner):
    """The file is stored first, naming its batch; then its record is written, then the batch counted.

    A worker killed after storing the file leaves a file the next sync links (it has no record).
    """
    insert_batches(database, [9])
    upload(client, lead, png_bytes("warm"), "warm.png")  # warm up the token lookup
    commands.clear()
    body = upload(client, lead, png_bytes("nine"), "plain.png", batch_id="batch_0009").get_json()
    file_id = ObjectId(body["id"])
    log = [(c["name"], c["collection"]) for c in commands.snapshot()]
    file_insert = log.index(("insert", "masks.files"))
    record_insert = log.index(("insert", "mask_records"))
    count_update = max(i for i, c in enumerate(log) if c == ("update", "batches"))
    assert file_insert < record_insert < count_update, log
    stored_meta = commands.snapshot()[file_insert]["command"]["documents"][0]["metadata"]
    assert stored_meta["batch_id"] == "batch_0009"

    # Simulate the crash after the file insert: no record, batch not counted. The next sync links it.
    database.mask_records.delete_many({})
    database.batches.update_one({"id": "batch_0009"}, {"$set": {"mask_count": 0}})
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_linked"] == 1
    assert records_of(database, "batch_0009") == {"plain.png": [(1, True, file_id)]}
    assert_records_consistent(database)


def test_add_version_leaves_a_file_another_writer_linked(app, database):
    from datetime import datetime, timezone

    import mask_records

    insert_batches(database, [1, 2])
    (file_id,) = insert_mask_files(database, ["loose.png"])
    doc = database["masks.files"].find_one({"_id": file_id})
    now = datetime.now(timezone.utc)
    with app.app_context():
        record, outcome = mask_records.add_version("batch_0001", doc, now)
        assert outcome == "current" and record["version"] == 1
        record, outcome = mask_records.add_version("batch_0002", doc, now)
        assert outcome == "already_linked" and record["batch_id"] == "batch_0001"
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 1
    assert database.batches.find_one({"id": "batch_0002"})["mask_count"] == 0
    assert_records_consistent(database)


def test_413_message_states_a_limit_below_one_megabyte(mongo_uri, db_name, app, lead):
    tiny = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1000)
    response = upload(tiny.test_client(), lead, os.urandom(5000), "x.png")
    assert response.status_code == 413
    assert response.get_json()["message"] == "The upload is larger than the 1000 bytes limit."
