"""Mask upload and download through GridFS (SPEC §3, §5 POST/GET /api/masks, §11)."""
import hashlib
import io
import math
import os
import re

import pytest
from bson import ObjectId

from checks import job_result
from factories import insert_batches, insert_mask_files
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
    assert body["deduplicated"] is False

    doc = database["masks.files"].find_one({"_id": ObjectId(body["id"])})
    assert doc["filename"] == "mask_001.png"
    assert doc["length"] == len(content)
    assert doc["metadata"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["metadata"]["uploaded_by"] == "lead1"
    assert doc["metadata"].get("linked_at") is None
    assert "batch_id" not in doc["metadata"]
    chunks = list(database["masks.chunks"].find({"files_id": doc["_id"]}).sort("n", 1))
    assert b"".join(c["data"] for c in chunks) == content
    assert stored_counts(database) == (1, 1)


def test_reupload_of_same_bytes_is_deduplicated(client, database, lead, seg):
    content = png_bytes("dup", 5000)
    first = upload(client, lead, content, "first.png").get_json()
    counts = stored_counts(database)

    response = upload(client, lead, content, "second_name.png")
    assert response.status_code in (200, 201)
    again = response.get_json()
    assert again["id"] == first["id"]
    assert again["deduplicated"] is True
    assert again["sha256"] == first["sha256"]
    assert again["filename"] == "first.png"
    assert again["length"] == len(content)
    assert stored_counts(database) == counts == (1, 1)

    # Any user uploading the same bytes gets the same file.
    insert_batches(database, [3], assignee="sam", status="assigned")
    third = upload(client, seg, content, "third.png", batch_id="batch_0003").get_json()
    assert third["id"] == first["id"] and third["deduplicated"] is True
    assert stored_counts(database) == (1, 1)


def test_deduplicated_multi_chunk_upload_leaves_no_orphan_chunks(client, database, lead):
    content = os.urandom(700 * 1024)
    first = upload(client, lead, content, "big.png").get_json()
    counts = stored_counts(database)
    assert counts == (1, math.ceil(len(content) / CHUNK_SIZE))
    again = upload(client, lead, content, "big_again.png").get_json()
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
    assert body["batch_id"] == "batch_0007"
    file_id = ObjectId(body["id"])
    doc = database.batches.find_one({"id": "batch_0007"})
    assert doc["mask_files"] == [file_id]
    assert doc["mask_count"] == 1
    meta = database["masks.files"].find_one({"_id": file_id})["metadata"]
    assert meta["batch_id"] == "batch_0007"
    assert meta["linked_at"] is not None

    second = upload(client, lead, png_bytes("y"), "img_4.png", batch_id="batch_0007").get_json()
    doc = database.batches.find_one({"id": "batch_0007"})
    assert doc["mask_count"] == 2
    assert sorted(doc["mask_files"]) == sorted([file_id, ObjectId(second["id"])])

    # The batch detail shows the new masks at once.
    detail = client.get("/api/batches/batch_0007", headers=lead).get_json()
    assert detail["mask_count"] == 2
    assert sorted(m["filename"] for m in detail["masks"]) == ["img_3.png", "img_4.png"]

    # An uploaded and linked file is not touched by sync.
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_scanned"] == 0 and result["files_linked"] == 0
    assert database.batches.find_one({"id": "batch_0007"})["mask_count"] == 2


def test_duplicate_upload_to_a_batch_links_the_existing_unlinked_file(client, database, lead):
    insert_batches(database, [8])
    content = png_bytes("later-linked")
    first = upload(client, lead, content, "loose.png").get_json()
    assert first["batch_id"] is None
    again = upload(client, lead, content, "loose.png", batch_id="batch_0008").get_json()
    assert again["id"] == first["id"]
    assert again["deduplicated"] is True
    assert again["batch_id"] == "batch_0008"
    doc = database.batches.find_one({"id": "batch_0008"})
    assert doc["mask_files"] == [ObjectId(first["id"])] and doc["mask_count"] == 1
    assert stored_counts(database) == (1, 1)
    # Uploading once more to the same batch does not add it twice.
    upload(client, lead, content, "loose.png", batch_id="batch_0008")
    assert database.batches.find_one({"id": "batch_0008"})["mask_count"] == 1


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
    """A second app on the test's database with a 1 MiB upload limit."""
    import db

    small = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1024 * 1024)
    with small.app_context():
        db.ensure_indexes()
    return small


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
    import db

    tiny = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1000)
    with tiny.app_context():
        db.ensure_indexes()
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
    assert database.batches.find_one({"id": "batch_0012"})["mask_files"] == [ObjectId(body["id"])]


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
    """The file is first stored unlinked but naming its batch, then added to the batch, then marked linked.

    A worker killed between those writes leaves a file the next sync links; never a linked file that is
    missing from its batch (which sync, scanning only unlinked files, would never repair).
    """
    insert_batches(database, [9])
    upload(client, lead, png_bytes("warm"), "warm.png")  # warm up the token lookup
    commands.clear()
    body = upload(client, lead, png_bytes("nine"), "plain.png", batch_id="batch_0009").get_json()
    file_id = ObjectId(body["id"])
    log = commands.snapshot()

    def is_file_insert(c):
        return c["name"] == "insert" and c["collection"] == "masks.files"

    inserts = [i for i, c in enumerate(log) if is_file_insert(c)]
    assert len(inserts) == 1
    stored_meta = log[inserts[0]]["command"]["documents"][0]["metadata"]
    assert stored_meta["batch_id"] == "batch_0009"
    assert stored_meta.get("linked_at") is None
    # After the insert: the batch update, then (same ordered bulk write or later) the link mark.
    later = log[inserts[0] + 1:]
    ops = []
    for c in later:
        if c["name"] == "bulkWrite":
            ns = [n["ns"] for n in c["command"]["nsInfo"]]
            ops += [ns[op["update"]].split(".", 1)[1] for op in c["command"]["ops"] if "update" in op]
        elif c["name"] == "update" and c["collection"] in ("batches", "masks.files"):
            ops += [c["collection"]] * len(c["command"]["updates"])
    assert ops[:2] == ["batches", "masks.files"], ops
    doc = database["masks.files"].find_one({"_id": file_id})
    assert doc["metadata"]["linked_at"] is not None
    assert database.batches.find_one({"id": "batch_0009"})["mask_files"] == [file_id]

    # Simulate the crash after the insert: the file naming its batch gets linked by the next sync.
    database["masks.files"].update_one({"_id": file_id}, {"$unset": {"metadata.linked_at": ""}})
    database.batches.update_one({"id": "batch_0009"}, {"$set": {"mask_files": [], "mask_count": 0}})
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_linked"] == 1
    assert database.batches.find_one({"id": "batch_0009"})["mask_files"] == [file_id]


def test_link_to_batch_leaves_a_file_another_writer_linked(app, database):
    from datetime import datetime, timezone

    import mask_service

    insert_batches(database, [1, 2])
    (file_id,) = insert_mask_files(database, ["loose.png"])
    now = datetime.now(timezone.utc)
    with app.app_context():
        assert mask_service.link_to_batch(file_id, "batch_0001", now) is True
        assert mask_service.link_to_batch(file_id, "batch_0002", now) is False
        assert mask_service.link_to_batch(file_id, "batch_0001", now) is True  # already there: still linked
    assert database.batches.find_one({"id": "batch_0001"})["mask_files"] == [file_id]
    assert database.batches.find_one({"id": "batch_0001"})["mask_count"] == 1
    assert database.batches.find_one({"id": "batch_0002"})["mask_files"] == []
    assert database.batches.find_one({"id": "batch_0002"})["mask_count"] == 0
    assert database["masks.files"].find_one({"_id": file_id})["metadata"]["batch_id"] == "batch_0001"


def test_413_message_states_a_limit_below_one_megabyte(mongo_uri, db_name, app, lead):
    tiny = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1000)
    response = upload(tiny.test_client(), lead, os.urandom(5000), "x.png")
    assert response.status_code == 413
    assert response.get_json()["message"] == "The upload is larger than the 1000 bytes limit."
