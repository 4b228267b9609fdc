"""Shared assertions for the API tests."""


def assert_error(response, status, code=None):
    """A JSON error of the one error shape (with the request id of its X-Request-ID header),
    with no internals leaked; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, (response.status_code, response.get_data(as_text=True)[:200])
    body = response.get_json()
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["request_id"] == response.headers["X-Request-ID"], body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    for leak in ("Traceback", "pymongo", "bson", "OperationFailure", 'File "'):
        assert leak not in body["message"]
    if code is not None:
        assert body["error"] == code, body
    return body


def snapshot(database):
    """Every batch document, for before/after comparisons of rejected writes."""
    return list(database.batches.find({}, {"_id": 0}).sort("id", 1))


def database_snapshot(database, exclude=()):
    """The whole database: every collection's documents (all fields, by `_id`) and its indexes.

    For before/after comparisons around rejected requests. Nothing is left out by
    default: the app's reads write nothing (tokens carry no last-used time, and the
    cache version in `app_state` moves only on writes), so a rejected request must leave
    users, tokens, jobs, GridFS files and chunks, and the cache version exactly as they
    were. `exclude` names collections a rejection legitimately writes (a failed login
    is counted for the login rate limit).
    """
    found = {}
    for name in sorted(database.list_collection_names()):
        if name.startswith("system.") or name in exclude:
            continue
        collection = database[name]
        found[name] = {"documents": list(collection.find({}).sort("_id", 1)),
                       "indexes": collection.index_information()}
    return found


def job_result(response):
    """The result of a job started with `?wait=…` that ended done within the wait (200)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["state"] == "done", body
    assert body["job_id"] == body["id"] == body["result"]["job_id"]
    return body["result"]
