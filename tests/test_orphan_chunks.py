"""Chunks left without a file (an upload cut off before GridFS wrote the file document):
check reports them, `remove-orphan-chunks` deletes exactly them; running uploads are spared."""
from datetime import timedelta

from bson import ObjectId

from factories import insert_batches, insert_mask_files
from test_cli import run
from timeutil import utcnow


def orphan(database, age_seconds, chunks=3):
    file_id = ObjectId.from_datetime(utcnow() - timedelta(seconds=age_seconds))
    file_id = ObjectId(str(file_id)[:8] + ObjectId().__str__()[8:])  # a unique id of that time
    database["masks.chunks"].insert_many([{"files_id": file_id, "n": n, "data": b"x" * 10}
                                          for n in range(chunks)])
    return file_id


def test_check_reports_and_the_command_removes_orphaned_chunks(app, client, database, lead):
    insert_batches(database, [1])
    kept = insert_mask_files(database, ["batch_0001/a.png", "batch_0001/b.png"])
    old = [orphan(database, 7200), orphan(database, 4000, chunks=1)]
    running = orphan(database, 60)  # an upload that may still be writing

    check = client.get("/api/check-mongo-files", headers=lead)
    assert check.status_code == 200
    assert check.get_json()["orphan_chunk_files"] == 2

    dry = run(app, "remove-orphan-chunks", "--dry-run")
    assert dry.exit_code == 0 and "2 file(s)" in dry.output
    assert database["masks.chunks"].count_documents({}) == 2 + 4 + 3

    result = run(app, "remove-orphan-chunks")
    assert result.exit_code == 0, result.output
    assert "removed 4 orphaned chunk(s) of 2 file(s)" in result.output
    assert database["masks.chunks"].count_documents({"files_id": {"$in": old}}) == 0
    assert database["masks.chunks"].count_documents({"files_id": running}) == 3
    assert database["masks.chunks"].count_documents({"files_id": {"$in": kept}}) == 2
    assert client.get("/api/check-mongo-files", headers=lead).get_json()["orphan_chunk_files"] == 0
    again = run(app, "remove-orphan-chunks")
    assert "removed 0 orphaned chunk(s) of 0 file(s)" in again.output


def test_a_clean_store_has_no_orphans(client, database, lead):
    insert_mask_files(database, ["batch_0001/a.png"])
    assert client.get("/api/check-mongo-files", headers=lead).get_json()["orphan_chunk_files"] == 0
