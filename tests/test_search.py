"""Batch search from the `search_keys` index (search.py) and the migration that adds the keys
to batches stored before them."""
import pytest

import db
from factories import insert_batches
from helpers import COMMANDS
from test_cli import run


def ids(client, headers, q):
    response = client.get("/api/batches", query_string={"q": q, "per_page": 200}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def test_one_key_must_start_with_the_query(client, database, seg):
    """Not a range that two different keys could meet ("scene" >= "c", "batch_…" < "c…")."""
    insert_batches(database, [1], name="Scene")
    assert ids(client, seg, "c") == []
    assert ids(client, seg, "sc") == ["batch_0001"]


@pytest.mark.parametrize("name,q", [
    ("Ärzte Übersicht", "ärz"), ("Ärzte Übersicht", "ÜBER"), ("Straße 5", "STRASSE"),
    ("ｆｕｌｌ width", "full"), ("tumour 🫁 scans", "TUMOUR 🫁"), ("CT-Lunge_rechts", "rechts"),
])
def test_unicode_names_are_found_whatever_their_case_and_width(client, database, seg, name, q):
    insert_batches(database, [1], name=name)
    insert_batches(database, [2], name="unrelated")
    assert ids(client, seg, q) == ["batch_0001"]


def test_the_query_is_a_key_lookup_not_a_regex(client, database, seg, commands):
    insert_batches(database, [1], name="Lung")
    commands.clear()
    assert ids(client, seg, "LU") == ["batch_0001"]
    sent = [c["command"] for c in COMMANDS.snapshot()
            if c["name"] in ("find", "aggregate", "count") and c["collection"] == "batches"]
    assert sent and "$regex" not in repr(sent) and "'search_keys': 'lu'" in repr(sent)


@pytest.mark.parametrize("q,reference", [("scan", None), ("b7", "batch_0007")])
def test_a_search_examines_only_its_matches(app, database, q, reference):
    """Explained on the server: the search_keys index finds the matches, whatever the collection holds."""
    import batch_service

    with app.app_context():
        db.ensure_indexes()
    insert_batches(database, range(1, 301), name="Liver set")
    insert_batches(database, [1001, 1002, 1003], name="Lung scan")
    with app.app_context():
        query = batch_service.list_filter(q=q)
    plan = database.batches.find(query).sort("number", 1).limit(50).explain()
    assert "batches_by_search_key" in repr(plan["queryPlanner"]["winningPlan"])
    expected = 1 if reference else 3  # batch_0007 alone, or the three "Lung scan" batches
    assert plan["executionStats"]["nReturned"] == expected
    assert plan["executionStats"]["totalDocsExamined"] == expected


def test_a_query_longer_than_the_stored_prefixes(client, database, seg):
    from search import PREFIX_LENGTH

    long_name = "Thorax " + "x" * PREFIX_LENGTH + " end"
    insert_batches(database, [1], name=long_name)
    insert_batches(database, [2], name="Thorax " + "x" * PREFIX_LENGTH + " other")
    assert ids(client, seg, long_name[:-2]) == ["batch_0001"]
    assert ids(client, seg, long_name[:PREFIX_LENGTH]) == ["batch_0001", "batch_0002"]


def test_search_keys_are_indexed(app, database):
    with app.app_context():
        db.ensure_indexes()
    keys = {name: info["key"] for name, info in database.batches.index_information().items()}
    assert keys["batches_by_search_key"] == [("search_keys", 1)]


def test_migrate_gives_old_batches_their_keys_once(app, database, seg):
    database.batches.insert_many([{"id": "batch_0001", "number": 1, "name": "Old Lung", "status": "pending"},
                                  {"id": "batch_0002", "number": 2, "status": "pending"}])
    database.batches.create_index("name", name="batches_by_name")
    client = app.test_client()
    assert ids(client, seg, "lung") == []

    first = run(app, "migrate")
    assert first.exit_code == 0, first.output
    assert "batches given search keys: 2" in first.output
    assert "obsolete indexes dropped: batches.batches_by_name" in first.output
    assert ids(client, seg, "lung") == ["batch_0001"] and ids(client, seg, "old") == ["batch_0001"]
    assert ids(client, seg, "batch_0002") == ["batch_0002"]

    again = run(app, "migrate")
    assert "batches given search keys: 0" in again.output and "obsolete indexes dropped: 0" in again.output


def test_imported_names_are_searchable(app, database, seg, tmp_path):
    path = tmp_path / "batches.json"
    path.write_text('[{"id": "batch_0003", "name": "Kidney left"}]')
    assert run(app, "import-batches", str(path)).exit_code == 0
    assert ids(app.test_client(), seg, "left") == ["batch_0003"]
    path.write_text('[{"id": "batch_0003", "name": "Spleen"}]')
    assert run(app, "import-batches", str(path)).exit_code == 0
    assert ids(app.test_client(), seg, "left") == [] and ids(app.test_client(), seg, "spl") == ["batch_0003"]
