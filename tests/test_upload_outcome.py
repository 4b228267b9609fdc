"""An upload whose answer was lost (or was a 503) is settled by uploading the same file
again: the stored file comes back as the current version of its name, linked to its batch, with
nothing stored twice."""
from bson import ObjectId

from factories import assert_records_consistent
from test_masks import png_bytes, stored_counts, upload


def version(database):
    doc = database.app_state.find_one({"_id": "cache_version"})
    return doc["v"] if doc else 0


def test_retry_after_a_stop_between_storing_and_linking(client, database, seg):
    from factories import insert_batches

    insert_batches(database, [4], assignee="sam", status="assigned")
    content = png_bytes("retry", 3000)
    first = upload(client, seg, content, "batch_0004/m.png", batch_id="batch_0004")
    assert first.status_code == 201
    file_id = ObjectId(first.get_json()["id"])
    # The state a worker killed after storing the file, before writing its record, leaves behind.
    database.mask_records.delete_many({"file_id": file_id})
    database.batches.update_one({"id": "batch_0004"}, {"$set": {"mask_count": 0}})
    counts = stored_counts(database)

    retry = upload(client, seg, content, "batch_0004/m.png", batch_id="batch_0004")

    assert retry.status_code == 200
    body = retry.get_json()
    assert body["id"] == str(file_id) and body["deduplicated"] is True and body["batch_id"] == "batch_0004"
    assert body["version"] == 1
    assert stored_counts(database) == counts
    assert [r["file_id"] for r in database.mask_records.find({"batch_id": "batch_0004"})] == [file_id]
    assert database.batches.find_one({"id": "batch_0004"})["mask_count"] == 1
    detail = client.get("/api/batches/batch_0004", headers=seg).get_json()
    assert [mask["id"] for mask in detail["masks"]] == [str(file_id)]
    assert_records_consistent(database)


def test_retry_after_a_complete_upload_changes_nothing_but_tells_the_caches(client, database, seg):
    from factories import insert_batches

    insert_batches(database, [4], assignee="sam", status="assigned")
    content = png_bytes("twice", 3000)
    first = upload(client, seg, content, "m.png", batch_id="batch_0004").get_json()
    batch_before = database.batches.find_one({"id": "batch_0004"}, {"_id": 0, "updated_at": 0})
    counts, before = stored_counts(database), version(database)

    retry = upload(client, seg, content, "m.png", batch_id="batch_0004")

    assert retry.status_code == 200 and retry.get_json()["id"] == first["id"]
    assert stored_counts(database) == counts
    assert database.batches.find_one({"id": "batch_0004"}, {"_id": 0, "updated_at": 0}) == batch_before
    # Other workers drop what they cached, in case the first attempt stopped before saying so.
    assert version(database) > before
