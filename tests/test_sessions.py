"""Sessions end on the server: logout ends one; a password, role or active change, and
`revoke-sessions`, end all of an account's sessions and its API token; a session also
ends SESSION_ABSOLUTE_HOURS after its login, however often it is used."""
import time

import pytest

from helpers import build_app, make_user
from test_access_matrix import resign
from test_auth import PASSWORD, login, page_csrf


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def logged_in(app, username="sam"):
    client = app.test_client()
    assert login(client, username).status_code == 302
    assert client.get("/api/batches").status_code == 200
    return client


def cookie_of(client):
    return client.get_cookie("session").value


def with_cookie(app, cookie):
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def test_logout_ends_that_session_only(app, seg):
    first, second = logged_in(app), logged_in(app)
    stolen = cookie_of(first)
    csrf = page_csrf(first)

    assert first.post("/logout", data={"csrf_token": csrf}).status_code == 302

    replayed = with_cookie(app, stolen)
    assert replayed.get("/api/batches").status_code == 401
    assert replayed.get("/").status_code == 302
    assert second.get("/api/batches").status_code == 200


def test_the_database_holds_no_session_id_in_clear(app, database, seg):
    client = logged_in(app)
    serializer = app.session_interface.get_signing_serializer(app)
    sid = serializer.loads(cookie_of(client))["sid"]
    records = list(database.sessions.find({}))
    assert len(records) == 1 and sid not in str(records)
    assert records[0]["username"] == "sam" and records[0]["expires_at"] > records[0]["created_at"]


def test_logging_in_again_ends_the_session_it_replaces(app, database, seg):
    client = logged_in(app)
    old = cookie_of(client)
    assert login(client, "sam").status_code == 302
    assert database.sessions.count_documents({}) == 1
    assert with_cookie(app, old).get("/api/batches").status_code == 401


@pytest.mark.parametrize("change", ["password", "role", "deactivate", "revoke-sessions"])
def test_account_changes_end_every_session_and_the_token(app, database, seg, change):
    sessions = [logged_in(app), logged_in(app)]
    assert app.test_client().get("/api/batches", headers=seg).status_code == 200

    if change == "password":
        result = run(app, "create-user", "sam", "--role", "segmenter", "--password-stdin", input="another-pass\n")
    elif change == "role":
        result = run(app, "create-user", "sam", "--role", "lead", "--password-stdin", input=PASSWORD + "\n")
    elif change == "deactivate":
        result = run(app, "deactivate-user", "sam")
    else:
        result = run(app, "revoke-sessions", "sam")
    assert result.exit_code == 0, result.output

    for client in sessions:
        assert client.get("/api/batches").status_code == 401
    assert app.test_client().get("/api/batches", headers=seg).status_code == 401
    assert database.sessions.count_documents({"username": "sam"}) == 0
    assert "token_hash" not in database.users.find_one({"username": "sam"})


def test_a_display_name_change_through_import_keeps_sessions(app, database, seg, tmp_path):
    client = logged_in(app)
    path = tmp_path / "users.json"
    path.write_text('[{"username": "sam", "role": "segmenter", "display_name": "Sam R."}]')
    assert run(app, "import-users", str(path)).exit_code == 0
    assert client.get("/api/batches").status_code == 200
    assert app.test_client().get("/api/batches", headers=seg).status_code == 200


def test_revoke_token_keeps_sessions(app, seg):
    client = logged_in(app)
    result = run(app, "revoke-token", "sam")
    assert result.exit_code == 0, result.output
    assert app.test_client().get("/api/batches", headers=seg).status_code == 401
    assert client.get("/api/batches").status_code == 200


def test_deactivated_account_stays_deactivated_until_activated(app, database, seg):
    assert run(app, "deactivate-user", "sam").exit_code == 0
    assert login(app.test_client(), "sam").status_code == 401

    result = run(app, "create-user", "sam", "--role", "segmenter", "--password-stdin", input="brand-new-pass\n")
    assert result.exit_code == 0, result.output
    assert "deactivated" in result.output and "activate-user sam" in result.output
    assert database.users.find_one({"username": "sam"})["active"] is False
    assert login(app.test_client(), "sam", password="brand-new-pass").status_code == 401

    assert run(app, "activate-user", "sam").exit_code == 0
    assert login(app.test_client(), "sam", password="brand-new-pass").status_code == 302
    # The token ended with the deactivation; activating does not bring it back.
    assert app.test_client().get("/api/batches", headers=seg).status_code == 401


@pytest.mark.parametrize("command", ["deactivate-user", "activate-user", "revoke-token", "revoke-sessions"])
def test_account_commands_name_a_missing_user(app, database, command):
    result = run(app, command, "nobody")
    assert result.exit_code != 0
    assert "no user 'nobody'" in result.output
    assert database.users.count_documents({}) == 0


def test_a_session_ends_at_its_absolute_lifetime_even_when_used(mongo_uri, db_name):
    import db

    app = build_app(mongo_uri, db_name, SESSION_ABSOLUTE_HOURS=1.5 / 3600)
    try:
        make_user(app, "sam", "segmenter")
        client = logged_in(app)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # used all along: the cookie is refreshed each time
            assert client.get("/api/batches").status_code == 200
            time.sleep(0.2)
        time.sleep(0.8)
        assert client.get("/api/batches").status_code == 401
    finally:
        with app.app_context():
            db.client().drop_database(db_name)


def test_a_cookie_without_a_session_record_is_anonymous(app, seg):
    """Cookies signed before sessions were recorded (no id) log nobody in."""
    client = logged_in(app)
    serializer = app.session_interface.get_signing_serializer(app)
    payload = serializer.loads(cookie_of(client))
    del payload["sid"]
    old_style = serializer.dumps(payload)
    assert with_cookie(app, old_style).get("/api/batches").status_code == 401
    assert with_cookie(app, resign(app, cookie_of(client), 0)).get("/api/batches").status_code == 200


def test_a_session_of_another_account_does_not_pass(app, database, seg, other_seg):
    """A session record belongs to one account: another account's id in the cookie fails."""
    sam, olga = logged_in(app, "sam"), logged_in(app, "olga")
    serializer = app.session_interface.get_signing_serializer(app)
    sam_payload, olga_payload = serializer.loads(cookie_of(sam)), serializer.loads(cookie_of(olga))
    mixed = serializer.dumps({**sam_payload, "sid": olga_payload["sid"]})
    assert with_cookie(app, mixed).get("/api/batches").status_code == 401


# --------------------------------------------------------------------------- across workers


def _served_by(server, path):
    return {line["pid"] for line in server.json_lines()
            if line.get("path") == path and line.get("logger") == "segdash.request"}


def _flask_cli(mongo_uri, db_name, *args):
    import os
    import subprocess
    import sys

    from helpers import ROOT

    env = dict(os.environ, MONGO_URI=mongo_uri, MONGO_DB=db_name, SECRET_KEY="ops-test")
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.system
def test_revocation_reaches_every_gunicorn_worker_within_a_second(mongo_uri, db_name):
    """Both workers cache the sessions; a logout on one and `revoke-sessions` from the
    command line end them on both within CACHE_VERSION_CHECK_SECONDS (1 s)."""
    import re

    import requests

    from gunicorn_server import GunicornServer, drop_database, prepare_database

    bearer = prepare_database(mongo_uri, db_name, lead="lead1")
    setup = build_app(mongo_uri, db_name)
    make_user(setup, "sam", "segmenter")
    server = GunicornServer(mongo_uri, db_name, workers=2)
    try:
        def browser_login():
            browser = requests.Session()
            page = browser.get(server.base + "/login", timeout=10)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            answer = browser.post(server.base + "/login", data={"username": "sam", "password": PASSWORD,
                                                                "csrf_token": csrf},
                                  allow_redirects=False, timeout=10)
            assert answer.status_code == 302, answer.text
            home = browser.get(server.base + "/", timeout=10)
            return browser.cookies.get("session"), re.search(
                r'<meta name="csrf-token" content="([^"]+)"', home.text).group(1)

        def statuses(cookie=None, headers=None, count=24):
            # A new connection each time, so that both workers answer.
            return [requests.get(server.base + "/api/batches", cookies={"session": cookie} if cookie else None,
                                 headers=headers, timeout=10).status_code for _ in range(count)]

        logged_out, csrf = browser_login()
        revoked, _ = browser_login()
        for _ in range(5):
            assert statuses(logged_out) == [200] * 24 and statuses(revoked) == [200] * 24
            assert statuses(headers=bearer) == [200] * 24
            if len(_served_by(server, "/api/batches")) == 2:
                break
        assert len(_served_by(server, "/api/batches")) == 2, "one worker served every request"

        answer = requests.post(server.base + "/logout", cookies={"session": logged_out},
                               data={"csrf_token": csrf}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        result = _flask_cli(mongo_uri, db_name, "revoke-sessions", "sam")
        assert result.returncode == 0, result.stderr
        result = _flask_cli(mongo_uri, db_name, "revoke-token", "lead1")
        assert result.returncode == 0, result.stderr
        time.sleep(1.2)

        assert statuses(logged_out) == [401] * 24
        assert statuses(revoked) == [401] * 24
        assert statuses(headers=bearer) == [401] * 24
    finally:
        server.close()
        drop_database(mongo_uri, db_name)
