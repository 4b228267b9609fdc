"""import-users and import-batches check every record with the rules of the API and
create-user, and import nothing when one record is bad, naming its index and field."""
import json

import pytest

from checks import database_snapshot
from factories import insert_batches
from helpers import make_user
from test_cli import run


def import_file(app, tmp_path, command, records):
    path = tmp_path / "import.json"
    path.write_text(json.dumps(records))
    return run(app, command, str(path))


GOOD_USER = {"username": "ok1", "role": "segmenter", "password": "long-enough"}


@pytest.mark.parametrize("record,field", [
    ({"username": "a1", "role": "segmenter", "password": "short"}, "password"),
    ({"username": "a1", "role": "segmenter", "password": 12345678}, "password"),
    ({"username": "a1", "role": "segmenter", "password": "x" * 5000}, "password"),
    ({"username": "a1", "role": "boss"}, "role"),
    ({"username": "a1", "role": ["lead"]}, "role"),
    ({"username": "a b", "role": "lead"}, "username"),
    ({"username": {"$ne": None}, "role": "lead"}, "username"),
    ({"username": "a1", "role": "lead", "display_name": "Eve\nAdmin"}, "display_name"),
    ({"username": "a1", "role": "lead", "display_name": "x" * 201}, "display_name"),
    ({"username": "a1", "role": "lead", "display_name": 7}, "display_name"),
    ({"username": "a1", "role": "lead", "active": False}, "active"),
    ({"role": "lead"}, "username"),
    ({"username": "ok1", "role": "lead"}, "username"),  # the same name as record 0
])
def test_a_bad_user_record_imports_nothing(app, database, tmp_path, record, field):
    before = database_snapshot(database)
    result = import_file(app, tmp_path, "import-users", [GOOD_USER, record, {**GOOD_USER, "username": "ok2"}])
    assert result.exit_code != 0
    assert f"record 1, field '{field}'" in result.output, result.output
    assert "nothing imported" in result.output
    assert database_snapshot(database) == before


def test_a_user_record_that_is_not_an_object_is_named(app, database, tmp_path):
    result = import_file(app, tmp_path, "import-users", [GOOD_USER, "lead1", None])
    assert result.exit_code != 0
    assert "record 1: not an object" in result.output and "record 2: not an object" in result.output
    assert database.users.count_documents({}) == 0


def test_create_user_applies_the_same_rules(app, database):
    result = run(app, "create-user", "eve", "--role", "lead", "--display-name", "Eve\x1b[31m",
                 "--password-stdin", input="long-enough\n")
    assert result.exit_code != 0 and "display name" in result.output
    result = run(app, "create-user", "eve", "--role", "lead", "--password-stdin", input="short\n")
    assert result.exit_code != 0 and "8 to 1024 characters" in result.output
    assert database.users.count_documents({}) == 0


@pytest.fixture
def people(app):
    make_user(app, "sam", "segmenter")
    make_user(app, "lead1", "lead")
    make_user(app, "gone", "segmenter")
    assert run(app, "deactivate-user", "gone").exit_code == 0


GOOD_BATCH = {"id": "batch_0001", "name": "First", "image_count": 3}


@pytest.mark.parametrize("record,field", [
    ({"id": "batch_0002", "image_count": 10 ** 30}, "image_count"),
    ({"id": "batch_0002", "image_count": -1}, "image_count"),
    ({"id": "batch_0002", "image_count": 2.5}, "image_count"),
    ({"id": "batch_0002", "image_count": True}, "image_count"),
    ({"id": "batch_0002", "image_count": "7"}, "image_count"),
    ({"id": "batch_0002", "image_count": 10_000_001}, "image_count"),
    ({"id": "batch_0002", "name": "bad\x00name"}, "name"),
    ({"id": "batch_0002", "name": "x" * 201}, "name"),
    ({"id": "batch_0002", "name": ["x"]}, "name"),
    ({"id": "nonsense"}, "id"),
    ({"id": 2}, "id"),
    ({"id": "Batch-1"}, "id"),  # the same batch as record 0
    ({"id": "batch_0002", "status": "done"}, "status"),
    ({"id": "batch_0002", "status": "assigned"}, "status"),  # assigned to nobody
    ({"id": "batch_0002", "status": "in_progress", "assignee": None}, "status"),
    ({"id": "batch_0002", "status": "pending", "assignee": "sam"}, "status"),
    ({"id": "batch_0002", "assignee": "sam"}, "assignee"),  # a new batch is pending
    ({"id": "batch_0002", "status": "assigned", "assignee": "lead1"}, "assignee"),
    ({"id": "batch_0002", "status": "assigned", "assignee": "gone"}, "assignee"),
    ({"id": "batch_0002", "status": "assigned", "assignee": "nobody"}, "assignee"),
    ({"id": "batch_0002", "status": "assigned", "assignee": "$ne"}, "assignee"),
    ({"id": "batch_0002", "mask_count": 5}, "mask_count"),
    ({"name": "no id"}, "id"),
])
def test_a_bad_batch_record_imports_nothing(app, database, tmp_path, people, record, field):
    before = database_snapshot(database)
    result = import_file(app, tmp_path, "import-batches", [GOOD_BATCH, record, {"id": "batch_0003"}])
    assert result.exit_code != 0
    assert f"record 1, field '{field}'" in result.output, result.output
    assert database_snapshot(database) == before


def test_status_and_assignee_are_checked_against_the_stored_batch(app, database, tmp_path, people):
    insert_batches(database, [5], assignee="sam", status="assigned")
    insert_batches(database, [6])
    ok = import_file(app, tmp_path, "import-batches", [{"id": "batch_0005", "status": "in_progress"}])
    assert ok.exit_code == 0, ok.output
    assert database.batches.find_one({"id": "batch_0005"})["status"] == "in_progress"
    bad = import_file(app, tmp_path, "import-batches", [{"id": "batch_0006", "status": "completed"}])
    assert bad.exit_code != 0 and "record 0, field 'status'" in bad.output


def test_good_batches_with_assignees_import(app, database, tmp_path, people):
    result = import_file(app, tmp_path, "import-batches", [
        GOOD_BATCH, {"id": "batch_0002", "status": "assigned", "assignee": "sam", "image_count": 10_000_000}])
    assert result.exit_code == 0, result.output
    doc = database.batches.find_one({"id": "batch_0002"})
    assert (doc["status"], doc["assignee"], doc["image_count"]) == ("assigned", "sam", 10_000_000)


def test_every_problem_is_listed_up_to_a_limit(app, database, tmp_path):
    result = import_file(app, tmp_path, "import-batches", [{"id": "nonsense"}] * 80)
    assert result.exit_code != 0
    assert "record 79" not in result.output and "record 49, field 'id'" in result.output
    assert "and 30 more" in result.output
