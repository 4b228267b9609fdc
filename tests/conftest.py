"""Test fixtures: a real MongoDB-compatible server over a socket, one database per test.

The server is started once per session the way start_optimized.sh starts it
(`mongod` when on PATH, else SecantusDB); TEST_MONGO_URI points at another one.
"""
import os
import uuid

import pytest

from bench.servers import DatabaseServer
from helpers import indexed_app, make_user, record_commands

# The tests' own app instances use one process's metrics registry; the Gunicorn servers
# they start make their own multiprocess directory (gunicorn_config.py).
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


def _unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, one for every browser test of the session.

    Without /usr/bin/chromium the browser tests are skipped locally and FAIL under CI (env CI
    set); run_tests.sh installs the Debian package when it is missing."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (requirements-dev.txt)")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium package (run_tests.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        expect.set_options(timeout=10_000)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def mongo_uri():
    uri = os.environ.get("TEST_MONGO_URI")
    if uri:
        yield uri
        return
    with DatabaseServer() as server:
        yield server.uri


@pytest.fixture
def db_name():
    return f"segdash_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(request, mongo_uri, db_name):
    """The app on the test's own database (dropped afterwards).

    Tests that request the `real_hashing` fixture get the production password hash.
    """
    import db

    hashing = {"PASSWORD_HASH_METHOD": "scrypt"} if "real_hashing" in request.fixturenames else {}
    application = indexed_app(mongo_uri, db_name, **hashing)
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


@pytest.fixture
def lead(app):
    return make_user(app, "lead1", "lead")


@pytest.fixture
def seg(app):
    return make_user(app, "sam", "segmenter")


@pytest.fixture
def other_seg(app):
    return make_user(app, "olga", "segmenter")


@pytest.fixture
def real_hashing():
    """Requested by tests that must see the production password hash."""


@pytest.fixture
def commands():
    """Every database command sent from here on by this process (helpers.CommandLog)."""
    return record_commands()


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
