"""The write path keeps the caches coherent: every database command that changes batches,
masks (files or chunks) or users is followed, before the request or command returns, by
the cache version bump (`findAndModify` on app_state `cache_version`).

Each scenario runs one write endpoint, service function or CLI command and reads the
commands it sent (pymongo command monitoring, conftest.CommandLog). Every write route of
the app must have a scenario here, so a new one cannot be added without being checked.
"""
import io
import json

import pytest

import cache
import db
from factories import insert_batches, insert_mask_files, png_bytes, store_mask

CACHED_COLLECTIONS = {"batches", "users", "masks.files", "masks.chunks", "batch_history"}
WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify", "bulkWrite"}
# Write routes that change no cached data: login and logout touch only the session and the
# login rate limit's own collections; starting a check job and cancelling a job write only
# the job's record (the jobs collection is cached nowhere).
ROUTES_WITHOUT_CACHED_WRITES = {"pages.login", "pages.logout", "files.check_mongo_files_job", "jobs.cancel_job"}


def _changed(entry):
    """True unless the reply says the command changed nothing (a failed command may have)."""
    reply = entry["reply"]
    if entry["failed"] or reply is None:
        return True
    if "lastErrorObject" in reply:
        return bool(reply["lastErrorObject"].get("n"))
    return any(reply.get(key) for key in ("n", "nInserted", "nMatched", "nModified", "nUpserted",
                                          "nDeleted", "upserted"))


def _writes_cached(entry, db_name):
    if entry["name"] not in WRITE_COMMANDS:
        return False
    if entry["name"] == "bulkWrite":
        return any(info.get("ns") in {f"{db_name}.{name}" for name in CACHED_COLLECTIONS}
                   for info in entry["command"].get("nsInfo", []))
    return entry["db"] == db_name and entry["collection"] in CACHED_COLLECTIONS


def _is_bump(entry, db_name):
    return (entry["name"] == "findAndModify" and entry["db"] == db_name and entry["collection"] == "app_state"
            and entry["command"].get("query", {}).get("_id") == cache.VERSION_ID)


def assert_writes_then_bump(commands, db_name, label):
    """At least one cached-data write happened, and a bump came after the last one."""
    log = commands.snapshot()
    writes = [i for i, entry in enumerate(log) if _writes_cached(entry, db_name) and _changed(entry)]
    bumps = [i for i, entry in enumerate(log) if _is_bump(entry, db_name)]
    assert writes, f"{label}: the scenario changed no batch, mask or user"
    assert bumps and bumps[-1] > writes[-1], (
        f"{label}: write {log[writes[-1]]['name']} on {log[writes[-1]]['collection']} "
        f"not followed by a cache version bump")


# --------------------------------------------------------------------------- HTTP write routes


def _upload(client, headers, content, batch_id=None, name="m.png"):
    data = {"file": (io.BytesIO(content), name)}
    if batch_id:
        data["batch_id"] = batch_id
    return client.post("/api/masks", data=data, headers=headers, content_type="multipart/form-data")


ROUTE_SCENARIOS = {}


def route_scenario(endpoint):
    def register(function):
        ROUTE_SCENARIOS.setdefault(endpoint, []).append(function)
        return function
    return register


@route_scenario("batches.patch_batch")
def segmenter_starts_a_batch(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="assigned")
    return [lambda: client.patch("/api/batches/batch_0001", json={"status": "in_progress"}, headers=seg)]


@route_scenario("batches.patch_batch")
def lead_assigns_a_batch(client, database, lead, seg):
    insert_batches(database, [1])
    return [lambda: client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=lead)]


@route_scenario("batches.patch_batch")
def lead_rejects_with_a_reason(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="completed")
    return [lambda: client.patch("/api/batches/batch_0001", json={"status": "rejected", "reason": "Mask 3 is empty."},
                                 headers=lead)]


@route_scenario("batches.patch_batch")
def lead_reopens_a_reviewed_batch(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="reviewed")
    return [lambda: client.patch("/api/batches/batch_0001", json={"status": "in_progress", "reason": "Redo mask 2."},
                                 headers=lead)]


@route_scenario("batches.patch_batch")
def segmenter_completes_with_fewer_masks_confirmed(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="in_progress")
    return [lambda: client.patch("/api/batches/batch_0001", json={"status": "completed", "confirm_incomplete": True},
                                 headers=seg)]


@route_scenario("batches.assign_batches")
def lead_assigns_in_bulk(client, database, lead, seg):
    insert_batches(database, [1, 2, 3])
    return [lambda: client.post("/api/batches/assign", json={"ids": ["batch_0001", "batch_0003"], "assignee": "sam"},
                                headers=lead)]


@route_scenario("masks.upload_mask")
def segmenter_uploads_into_a_batch(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="in_progress")
    return [lambda: _upload(client, seg, b"\x89PNG one", "batch_0001")]


@route_scenario("masks.upload_mask")
def lead_uploads_a_large_file_without_a_batch(client, database, lead, seg):
    return [lambda: _upload(client, lead, b"\x89PNG large" * 60000)]  # several GridFS chunks


@route_scenario("masks.upload_mask")
def deduplicated_upload_links_the_stored_copy(client, database, lead, seg):
    insert_batches(database, [1], assignee="sam", status="in_progress")
    return [lambda: _upload(client, lead, b"\x89PNG shared"),
            lambda: _upload(client, seg, b"\x89PNG shared", "batch_0001", name="again.png")]


@route_scenario("files.sync_batch_files")
def sync_links_files(client, database, lead, seg):
    insert_batches(database, [1, 2])
    insert_mask_files(database, ["batch_0001/a.png", "b2_img1.png"])
    return [lambda: client.post("/api/sync-batch-files?wait=30", headers=lead)]


@route_scenario("files.auto_create_batches")
def auto_create_makes_batches(client, database, lead, seg):
    insert_mask_files(database, ["batch_0042/a.png"])
    return [lambda: client.post("/api/auto-create-batches?wait=30", headers=lead)]


@route_scenario("i18n.set_locale")
def segmenter_chooses_a_language(client, database, lead, seg):
    return [lambda: client.post("/locale", data={"locale": "es"}, headers=seg)]


def _route_scenarios():
    return [pytest.param(function, id=function.__name__)
            for functions in ROUTE_SCENARIOS.values() for function in functions]


def test_every_write_route_has_a_scenario(app):
    write_endpoints = {rule.endpoint for rule in app.url_map.iter_rules()
                       if rule.methods - {"GET", "HEAD", "OPTIONS"}}
    assert write_endpoints - ROUTES_WITHOUT_CACHED_WRITES == set(ROUTE_SCENARIOS)


@pytest.mark.parametrize("scenario", _route_scenarios())
def test_write_route_bumps_the_cache_version(app, client, database, db_name, lead, seg, commands, runner, scenario):
    """Jobs (sync, auto-create) are run by the in-process runner while the request waits (?wait)."""
    for request in scenario(client, database, lead, seg):
        commands.clear()  # the last request's commands are checked; earlier ones set the scene
        response = request()
        assert response.status_code < 400, response.get_data(as_text=True)
    assert_writes_then_bump(commands, db_name, scenario.__name__)


def test_a_preview_writes_only_its_own_uncached_collection(client, database, db_name, lead, commands):
    """GET /api/masks/<id>/preview stores the preview it made in mask_previews, which no worker
    caches: no cached collection is written and no version bump is needed."""
    from PIL import Image

    file_id = store_mask(database, "batch_0001_a.png", png_bytes(Image.new("L", (8, 8))))
    commands.clear()
    response = client.get(f"/api/masks/{file_id}/preview", headers=lead)
    assert response.status_code == 200
    log = commands.snapshot()
    written = {entry["collection"] for entry in log if entry["name"] in WRITE_COMMANDS and entry["db"] == db_name}
    assert written == {"mask_previews"}
    assert "mask_previews" not in db.CACHED_COLLECTIONS


# --------------------------------------------------------------------------- services and CLI


def _run(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    assert result.exit_code == 0, result.output
    return result


def test_user_services_bump_the_cache_version(app, db_name, commands):
    import auth

    with app.app_context():
        commands.clear()
        auth.create_user("nina", "segmenter", password="password123")
        assert_writes_then_bump(commands, db_name, "create_user")
        commands.clear()
        auth.create_token("nina")
        assert_writes_then_bump(commands, db_name, "create_token")


CLI_SCENARIOS = {
    "create-user": lambda app, tmp: _run(app, "create-user", "lena", "--role", "segmenter",
                                         "--password-stdin", input="s3cret-pass\n"),
    "create-token": lambda app, tmp: _run(app, "create-token", "lead1"),
    "import-batches": lambda app, tmp: _run(app, "import-batches", _json_file(
        tmp, "batches.json", [{"id": f"b{n}", "image_count": 3} for n in range(1, 6)])),
    "import-users": lambda app, tmp: _run(app, "import-users", _json_file(
        tmp, "users.json", [{"username": "ivo", "role": "segmenter"}, {"username": "uma", "role": "lead"}])),
    "seed-demo": lambda app, tmp: _run(app, "seed-demo", "--batches", "30", "--masks", "120"),
    "deactivate-user": lambda app, tmp: _run(app, "deactivate-user", "lead1"),
    "activate-user": lambda app, tmp: (_run(app, "deactivate-user", "lead1"), _run(app, "activate-user", "lead1")),
    "revoke-token": lambda app, tmp: _run(app, "revoke-token", "lead1"),
    "revoke-sessions": lambda app, tmp: _run(app, "revoke-sessions", "lead1"),
    "remove-orphan-chunks": lambda app, tmp: (_orphan_chunk(app), _run(app, "remove-orphan-chunks")),
    "migrate": lambda app, tmp: (_batch_without_search_keys(app), _run(app, "migrate")),
    "run-jobs": lambda app, tmp: (_queued_sync(app), _run(app, "run-jobs", "--once")),
}


def _queued_sync(app):
    """A sync job waiting for a runner, with a file to link."""
    import jobs

    with app.app_context():
        db.batches().insert_one({"id": "batch_0078", "number": 78, "name": "B78", "status": "pending"})
        insert_mask_files(db.database(), ["batch_0078/a.png"])
        jobs.enqueue("sync", "lead1", unit="files")


def _orphan_chunk(app):
    """Chunks of a file that was never finished, two hours ago."""
    from datetime import timedelta

    from bson import ObjectId

    from timeutil import utcnow

    with app.app_context():
        db.mask_chunks().insert_one({"files_id": ObjectId.from_datetime(utcnow() - timedelta(hours=2)),
                                     "n": 0, "data": b"lost"})


def _batch_without_search_keys(app):
    with app.app_context():
        db.batches().insert_one({"id": "batch_0077", "number": 77, "name": "Old shape", "status": "pending"})


def _json_file(tmp, name, data):
    path = tmp / name
    path.write_text(json.dumps(data))
    return str(path)


def test_every_writing_cli_command_has_a_scenario(app):
    reading_only = {"ensure-indexes", "unlock-login"}  # unlock-login: the login counts, cached nowhere
    assert set(app.cli.commands) - reading_only == set(CLI_SCENARIOS)


@pytest.mark.parametrize("name", sorted(CLI_SCENARIOS))
def test_cli_command_bumps_the_cache_version(app, db_name, lead, commands, tmp_path, name):
    commands.clear()
    CLI_SCENARIOS[name](app, tmp_path)
    assert_writes_then_bump(commands, db_name, name)


# --------------------------------------------------------------------------- the decorator itself


def test_a_write_that_fails_half_way_still_bumps(app, database, db_name, commands):
    @cache.writes
    def write_then_fail():
        db.batches().insert_one({"id": "batch_0001", "number": 1})
        raise RuntimeError("after the write")

    with app.app_context():
        commands.clear()
        with pytest.raises(RuntimeError, match="after the write"):
            write_then_fail()
    assert_writes_then_bump(commands, db_name, "write_then_fail")


def test_a_call_that_changes_nothing_does_not_bump(app, database, db_name, commands):
    """An idle sync or a no-op PATCH costs no round trip for the version."""
    @cache.writes
    def no_change():
        db.batches().update_one({"id": "batch_9999"}, {"$set": {"name": "x"}})

    with app.app_context():
        commands.clear()
        no_change()
    assert not any(_is_bump(entry, db_name) for entry in commands.snapshot())


def test_nested_writers_bump_once_at_the_end(app, database, db_name, commands):
    @cache.writes
    def inner(number):
        db.batches().insert_one({"id": f"batch_{number:04d}", "number": number})

    @cache.writes
    def outer():
        inner(1)
        inner(2)

    with app.app_context():
        commands.clear()
        outer()
    log = commands.snapshot()
    assert sum(_is_bump(entry, db_name) for entry in log) == 1
    assert _is_bump(log[-1], db_name)
