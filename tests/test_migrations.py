"""`flask --app app migrate`: a database of the earlier shape (id arrays on batches, link fields on
files) becomes mask records, idempotently."""
from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING

from checks import job_result
from factories import assert_records_consistent, insert_batches, insert_mask_files, records_of


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def build_old_shape(database):
    """Batches with `mask_files` arrays and files with `metadata.linked_at`, as the earlier version wrote."""
    day = datetime(2026, 11, 1, tzinfo=timezone.utc)
    insert_batches(database, [1, 2, 3, 4])
    a, b = insert_mask_files(database, ["batch_0001/a.png", "batch_0001/b.png"])
    old, new = insert_mask_files(database, ["first/img.png", "second/IMG.png"])
    database["masks.files"].update_one({"_id": old}, {"$set": {"uploadDate": day}})
    database["masks.files"].update_one({"_id": new}, {"$set": {"uploadDate": day + timedelta(days=1)}})
    (half,) = insert_mask_files(database, ["plain.png"])  # linked on the file, missing from the array
    (orphan,) = insert_mask_files(database, ["gone.png"])  # linked to a batch that no longer exists
    (loose,) = insert_mask_files(database, ["batch_0004/loose.png"])  # never linked
    links = {a: "batch_0001", b: "batch_0001", old: "batch_0002", new: "batch_0002", half: "batch_0003",
             orphan: "batch_0099"}
    for file_id, batch_id in links.items():
        database["masks.files"].update_one({"_id": file_id}, {"$set": {"metadata.batch_id": batch_id,
                                                                       "metadata.linked_at": day}})
    database.batches.update_one({"id": "batch_0001"}, {"$set": {"mask_files": [a, b], "mask_count": 2}})
    database.batches.update_one({"id": "batch_0002"}, {"$set": {"mask_files": [new, old], "mask_count": 2}})
    database.batches.update_one({"id": "batch_0003"}, {"$set": {"mask_files": [], "mask_count": 0}})
    database.batches.update_one({"id": "batch_0004"}, {"$set": {"mask_files": [], "mask_count": 3}})
    database["masks.files"].create_index([("metadata.linked_at", ASCENDING)], name="masks_by_linked_at")
    database["masks.files"].create_index([("metadata.batch_id", ASCENDING)], name="masks_by_batch")
    return {"a": a, "b": b, "old": old, "new": new, "half": half, "orphan": orphan, "loose": loose}


def test_migrate_converts_the_old_shape_and_is_idempotent(app, client, database, lead, runner):
    files = build_old_shape(database)
    result = run(app, "migrate")
    assert result.exit_code == 0, result.output
    assert "mask records created: 5" in result.output
    # batch 2 counted a replaced version, batch 3 missed its file, batch 4 counted nothing
    assert "mask counts corrected: 3" in result.output
    assert "masks.files.masks_by_linked_at" in result.output and "masks.files.masks_by_batch" in result.output

    assert records_of(database, "batch_0001") == {"a.png": [(1, True, files["a"])],
                                                  "b.png": [(1, True, files["b"])]}
    assert records_of(database, "batch_0002") == {"img.png": [(1, False, files["old"]), (2, True, files["new"])]}
    assert records_of(database, "batch_0003") == {"plain.png": [(1, True, files["half"])]}
    counts = {d["id"]: d["mask_count"] for d in database.batches.find()}
    assert counts == {"batch_0001": 2, "batch_0002": 1, "batch_0003": 1, "batch_0004": 0}
    assert database.mask_records.find_one({"file_id": {"$in": [files["orphan"], files["loose"]]}}) is None
    assert database.batches.count_documents({"mask_files": {"$exists": True}}) == 0
    assert database["masks.files"].count_documents({"metadata.linked_at": {"$exists": True}}) == 0
    assert not {"masks_by_linked_at", "masks_by_batch"} & set(database["masks.files"].index_information())
    assert_records_consistent(database)

    before = sorted(database.mask_records.find(), key=lambda d: d["file_id"])
    again = run(app, "migrate")
    assert again.exit_code == 0, again.output
    assert "nothing to migrate" in again.output
    assert sorted(database.mask_records.find(), key=lambda d: d["file_id"]) == before

    # The migrated database works: the detail lists the versions, sync links the unlinked file.
    detail = client.get("/api/batches/batch_0002", headers=lead).get_json()
    assert [(m["id"], m["version_count"]) for m in detail["masks"]] == [(str(files["new"]), 2)]
    result = job_result(client.post("/api/sync-batch-files?wait=30", headers=lead))
    assert result["files_linked"] == 1 and result["missing_batches"] == 1  # loose.png; gone.png names none
    assert_records_consistent(database)


def test_migrate_finishes_an_interrupted_run(app, database):
    """Cut off after some records: the rerun adds the rest, never a file twice, and recounts."""
    files = build_old_shape(database)
    import mask_records

    with app.app_context():
        doc = database["masks.files"].find_one({"_id": files["a"]})
        mask_records.add_version("batch_0001", doc, datetime.now(timezone.utc))
    result = run(app, "migrate")
    assert result.exit_code == 0, result.output
    assert "mask records created: 4" in result.output
    assert database.mask_records.count_documents({}) == 5
    assert_records_consistent(database)


def test_migrate_on_a_current_database_changes_nothing(app, database):
    result = run(app, "migrate")
    assert result.exit_code == 0, result.output
    assert "nothing to migrate" in result.output
