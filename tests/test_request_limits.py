"""Searches, CSV exports and checks are limited per user (request_limits.py)."""
import pytest

from checks import assert_error
from factories import insert_batches
from helpers import build_app, indexed_app, make_user


@pytest.fixture
def limited(mongo_uri, db_name):
    import db

    app = indexed_app(mongo_uri, db_name, EXPENSIVE_RATE_LIMIT="3 per minute")
    yield app
    with app.app_context():
        db.client().drop_database(db_name)


@pytest.mark.parametrize("path", ["/api/batches?q=batch", "/api/export/batches.csv",
                                  "/api/check-mongo-files"])
def test_the_fourth_expensive_request_in_a_minute_is_429(limited, path):
    lead, other = make_user(limited, "lead1", "lead"), make_user(limited, "lead2", "lead")
    insert_batches(_database(limited), [1])
    client = limited.test_client()
    for _ in range(3):
        assert client.get(path, headers=lead).status_code == 200
    refused = client.get(path, headers=lead)
    body = assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "try again in" in body["message"]
    # Another user is not affected, nor are cheap requests of the same user.
    assert client.get(path, headers=other).status_code == 200
    assert client.get("/api/batches", headers=lead).status_code == 200
    assert client.get("/api/batches/batch_0001", headers=lead).status_code == 200


def test_each_kind_has_its_own_count(limited):
    lead = make_user(limited, "lead1", "lead")
    client = limited.test_client()
    for _ in range(3):
        assert client.get("/api/batches?q=x", headers=lead).status_code == 200
    assert client.get("/api/export/batches.csv", headers=lead).status_code == 200
    assert client.get("/api/check-mongo-files", headers=lead).status_code == 200
    assert client.get("/api/batches?q=x", headers=lead).status_code == 429


def test_a_malformed_limit_fails_at_startup(mongo_uri, db_name):
    with pytest.raises(ValueError, match="EXPENSIVE_RATE_LIMIT"):
        build_app(mongo_uri, db_name, EXPENSIVE_RATE_LIMIT="often")


def _database(app):
    import db

    with app.app_context():
        return db.database()
