"""Command-line commands (flask --app app …), run through Click's test runner."""
import json

import db


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_create_user_and_token(app, database):
    result = run(app, "create-user", "lena", "--role", "segmenter", "--password-stdin", input="s3cret-pass\n")
    assert result.exit_code == 0, result.output
    user = database.users.find_one({"username": "lena"})
    assert user["role"] == "segmenter" and user["active"] is True
    assert "s3cret-pass" not in json.dumps(user, default=str)
    result = run(app, "create-token", "lena")
    token = result.output.strip()
    assert result.exit_code == 0 and len(token) >= 40
    stored = database.users.find_one({"username": "lena"})["token_hash"]
    assert stored != token and len(stored) == 64
    response = app.test_client().get("/api/batches", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_create_user_refuses_bad_input(app, database):
    assert run(app, "create-user", "x", "--role", "boss", "--password-stdin", input="longenough\n").exit_code != 0
    assert run(app, "create-user", "$bad", "--role", "lead", "--password-stdin", input="longenough\n").exit_code != 0
    assert run(app, "create-user", "ok", "--role", "lead", "--password-stdin", input="short\n").exit_code != 0
    assert database.users.count_documents({}) == 0
    assert run(app, "create-token", "nobody").exit_code != 0


def test_import_batches_is_an_idempotent_upsert(app, database, tmp_path):
    path = tmp_path / "batches.json"
    records = [{"id": f"Batch-{n}", "name": f"Set {n}", "image_count": 5} for n in range(1, 251)]
    path.write_text(json.dumps(records))
    result = run(app, "import-batches", str(path))
    assert result.exit_code == 0, result.output
    assert "250 new" in result.output
    assert database.batches.count_documents({}) == 250
    doc = database.batches.find_one({"id": "batch_0007"})
    assert doc["name"] == "Set 7" and doc["status"] == "pending" and doc["mask_count"] == 0
    assert "mask_files" not in doc
    database.batches.update_one({"id": "batch_0007"}, {"$set": {"mask_count": 1}})
    records[6]["name"] = "Renamed"
    path.write_text(json.dumps(records))
    result = run(app, "import-batches", str(path))
    assert result.exit_code == 0 and "0 new" in result.output
    assert database.batches.count_documents({}) == 250
    doc = database.batches.find_one({"id": "batch_0007"})
    assert doc["name"] == "Renamed" and doc["mask_count"] == 1
    # Each import is recorded as a job, with its progress and result.
    imports = list(database.jobs.find({"kind": "import"}).sort("created_at", 1))
    assert [job["state"] for job in imports] == ["done", "done"]
    assert imports[0]["progress"] == {"done": 250, "total": 250, "unit": "batches"}
    assert imports[0]["result"] == {"imported": 250, "inserted": 250, "updated": 0}
    assert imports[1]["result"] == {"imported": 250, "inserted": 0, "updated": 250}
    assert imports[0]["started_by"].startswith("cli:") and "lock" not in imports[0]


def test_import_batches_refuses_a_file_with_bad_records(app, database, tmp_path):
    path = tmp_path / "batches.json"
    path.write_text(json.dumps([{"id": "batch_1"}, {"id": "nonsense"}, {"id": "b2", "status": "done"},
                                {"id": "b3", "$set": 1}, {"name": "no id"}]))
    result = run(app, "import-batches", str(path))
    assert result.exit_code != 0
    for index in (1, 2, 3, 4):
        assert f"record {index}" in result.output
    assert database.batches.count_documents({}) == 0
    assert database.jobs.count_documents({}) == 0  # refused before any job was recorded
    path.write_text("{not json")
    assert run(app, "import-batches", str(path)).exit_code != 0


def test_import_users(app, database, tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps([{"username": "a1", "role": "segmenter", "password": "pw-123456"},
                                {"username": "b1", "role": "lead", "display_name": "Bea"}]))
    result = run(app, "import-users", str(path))
    assert result.exit_code == 0, result.output
    assert database.users.count_documents({}) == 2
    assert database.users.find_one({"username": "b1"})["display_name"] == "Bea"


def test_ensure_indexes_is_idempotent_and_names_each_index(app, database):
    assert run(app, "ensure-indexes").exit_code == 0
    assert run(app, "ensure-indexes").exit_code == 0
    names = set(database.batches.index_information())
    assert {"batch_by_id", "batches_by_status", "batches_by_assignee"} <= names
    assert "masks_by_sha256" in database["masks.files"].index_information()
    records = database.mask_records.index_information()
    assert records["records_current"]["partialFilterExpression"] == {"current": True}
    assert records["records_current"]["unique"] and records["records_by_file"]["unique"]
    retired = {name for _collection, name in db.RETIRED_INDEXES}
    assert not retired & set(database["masks.files"].index_information())
    assert all(query for *_rest, query in db.INDEXES)


def test_seed_demo_fills_an_empty_database_once(app, database):
    result = run(app, "seed-demo", "--batches", "120", "--masks", "500")
    assert result.exit_code == 0, result.output
    assert "Lead login: lead / " in result.output
    assert database.batches.count_documents({}) == 120
    assert database["masks.files"].count_documents({}) == 500
    assert database["masks.chunks"].count_documents({}) == 500
    assert database.users.count_documents({"role": "segmenter"}) == 12
    statuses = database.batches.distinct("status")
    assert {"pending", "assigned", "in_progress", "completed", "reviewed"} <= set(statuses)
    linked = database.mask_records.count_documents({})
    assert 0 < linked < 500
    # Every batch counts its current masks; a few names have a second, corrected version.
    from factories import assert_records_consistent

    assert_records_consistent(database)
    assert database.mask_records.count_documents({"version": 2}) >= 1
    again = run(app, "seed-demo", "--batches", "10", "--masks", "10")
    assert again.exit_code != 0
    assert database.batches.count_documents({}) == 120
