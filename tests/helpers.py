"""Plain helpers shared by the test modules and conftest.py (fixtures live in conftest.py)."""
import os
import threading
import time

from pymongo import monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Users made in tests get a cheap password hash (scrypt costs ~0.2 s a user); the app's
# PASSWORD_HASH_METHOD setting, also given to the Gunicorn servers the tests start.
TEST_PASSWORD_HASH = "pbkdf2:sha256:1000"


class CommandLog(monitoring.CommandListener):
    """Every database command sent by any client of this process (pymongo command monitoring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.commands = []
        self._open = {}  # request id -> its entry in `commands`, until answered
        self.documents_returned = 0  # documents in find and getMore replies

    def started(self, event):
        collection = event.command.get(event.command_name)
        if event.command_name == "getMore":
            collection = event.command.get("collection")
        entry = {"name": event.command_name, "db": event.database_name,
                 "collection": collection if isinstance(collection, str) else None,
                 "command": event.command, "reply": None, "failed": False}
        with self._lock:
            self.commands.append(entry)
            self._open[event.request_id] = entry

    def succeeded(self, event):
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        with self._lock:
            entry = self._open.pop(event.request_id, None)
            if entry is not None and event.command_name not in ("find", "getMore", "aggregate"):
                entry["reply"] = event.reply
            if event.command_name in ("find", "getMore") and isinstance(cursor, dict):
                batch = cursor.get("firstBatch", cursor.get("nextBatch", []))
                self.documents_returned += len(batch)

    def failed(self, event):
        with self._lock:
            entry = self._open.pop(event.request_id, None)
            if entry is not None:
                entry["failed"] = True

    def clear(self):
        with self._lock:
            self.commands.clear()
            self._open.clear()
            self.documents_returned = 0

    def snapshot(self):
        with self._lock:
            return list(self.commands)


COMMANDS = CommandLog()
monitoring.register(COMMANDS)


def record_commands():
    """The process-wide command log, cleared."""
    COMMANDS.clear()
    return COMMANDS


def build_app(mongo_uri, db_name, **overrides):
    """An app on `db_name` with the test settings (cheap password hash unless overridden)."""
    from app import create_app

    config = {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "SECRET_KEY": "test-secret",
              "SECRET_KEY_IS_EPHEMERAL": False, "TESTING": True, "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH}
    config.update(overrides)
    return create_app(config)


def indexed_app(mongo_uri, db_name, **overrides):
    """build_app, with the database's indexes made (the unique ones are rules the code relies on)."""
    import db

    application = build_app(mongo_uri, db_name, **overrides)
    with application.app_context():
        db.ensure_indexes()
    return application


def make_user(app, username, role, password="password123"):
    """Create a user and return a Bearer header for it."""
    import auth

    with app.app_context():
        auth.create_user(username, role, password=password)
        token = auth.create_token(username)
    return {"Authorization": f"Bearer {token}"}


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition", sleep=time.sleep):
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout`
    seconds. `sleep(seconds)` waits between polls (a browser test passes the page's own wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:g}s"
        sleep(interval)


def fresh_metrics(client, headers, timeout=10.0):
    """/api/metrics once its figures are no longer stale (recomputed in the background after a write)."""
    def answer():
        response = client.get("/api/metrics", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        return None if body.get("stale") else body

    return wait_for(answer, timeout=timeout, interval=0.1, what="fresh team figures")
