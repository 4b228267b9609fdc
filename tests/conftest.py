"""Test fixtures: a real MongoDB-compatible server over a socket, one database per test.

The server is started once per session the way start_optimized.sh starts it
(`mongod` when on PATH, else SecantusDB); TEST_MONGO_URI points at another one.
"""
import os
import socket
import sys
import tempfile
import threading
import uuid

import pytest
from pymongo import monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import embedded_db  # noqa: E402

# The tests' own app instances use one process's metrics registry; the Gunicorn servers
# they start make their own multiprocess directory (gunicorn_config.py).
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


class CommandLog(monitoring.CommandListener):
    """Every database command sent by any client of this process (pymongo command monitoring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.commands = []
        self.documents_returned = 0  # documents in find and getMore replies

    def started(self, event):
        collection = event.command.get(event.command_name)
        if event.command_name == "getMore":
            collection = event.command.get("collection")
        with self._lock:
            self.commands.append({"name": event.command_name, "db": event.database_name,
                                  "collection": collection if isinstance(collection, str) else None,
                                  "command": event.command})

    def succeeded(self, event):
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if event.command_name in ("find", "getMore") and isinstance(cursor, dict):
            batch = cursor.get("firstBatch", cursor.get("nextBatch", []))
            with self._lock:
                self.documents_returned += len(batch)

    def failed(self, event):
        pass

    def clear(self):
        with self._lock:
            self.commands.clear()
            self.documents_returned = 0

    def snapshot(self):
        with self._lock:
            return list(self.commands)


COMMANDS = CommandLog()
monitoring.register(COMMANDS)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_uri():
    uri = os.environ.get("TEST_MONGO_URI")
    if uri:
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="segdash-testdb-") as dbpath:
        process, uri, _name = embedded_db.start(dbpath, free_port(), os.path.join(dbpath, "server.log"))
        try:
            yield uri
        finally:
            embedded_db.stop(process)


def build_app(mongo_uri, db_name, **overrides):
    from app import create_app

    config = {"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "SECRET_KEY": "test-secret",
              "SECRET_KEY_IS_EPHEMERAL": False, "TESTING": True}
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def db_name():
    return f"segdash_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(mongo_uri, db_name):
    import db

    application = build_app(mongo_uri, db_name)
    with application.app_context():
        db.ensure_indexes()
    yield application
    with application.app_context():
        db.client().drop_database(db_name)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def database(app):
    """The test's database handle (pymongo Database), for arranging and asserting data."""
    import db

    with app.app_context():
        return db.database()


def make_user(app, username, role, password="password123"):
    """Create a user and return a Bearer header for it."""
    import auth

    with app.app_context():
        auth.create_user(username, role, password=password)
        token = auth.create_token(username)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def lead(app):
    return make_user(app, "lead1", "lead")


@pytest.fixture
def seg(app):
    return make_user(app, "sam", "segmenter")


@pytest.fixture
def other_seg(app):
    return make_user(app, "olga", "segmenter")


@pytest.fixture(autouse=True)
def fast_password_hashing(request, monkeypatch):
    """Users made in tests get a cheap hash (scrypt costs ~0.2 s a user).

    Tests that request the `real_hashing` fixture keep the production hash.
    """
    if "real_hashing" not in request.fixturenames:
        import auth
        from werkzeug.security import generate_password_hash

        monkeypatch.setattr(auth, "generate_password_hash",
                            lambda password: generate_password_hash(password, method="pbkdf2:sha256:1000"))


@pytest.fixture
def real_hashing():
    """Requested by tests that must see the production password hash."""


@pytest.fixture
def commands():
    COMMANDS.clear()
    return COMMANDS


@pytest.fixture
def runner(app):
    """A job runner in a thread of this process (polling often), for tests that start jobs."""
    import jobrunner

    app.config["JOB_POLL_SECONDS"] = 0.02
    job_runner = jobrunner.Runner(app)
    thread = job_runner.start_thread()
    yield job_runner
    job_runner.stop()
    thread.join(60)
    assert not thread.is_alive(), "the job runner did not stop"
