"""Login rate limiting (rate_limit.py): failed logins counted in the database, per (username,
address) pair, per address and per username, shared by every app instance, worker process
and host; a browser that logged in before, and `unlock-login`, get past the username ceiling."""
import time
import uuid

import pytest
import requests

import db
from bench.servers import free_port
from checks import assert_error
from gunicorn_server import GunicornServer, drop_database, prepare_database
from helpers import build_app, make_user
from test_auth import PASSWORD, hidden_csrf, login

WINDOWS = "rate_limit_windows"


@pytest.fixture
def make_app(mongo_uri, db_name):
    """Builds apps on the test's database with the given limits (default: 3 failures an hour
    per username and address, 100 per address, 1000 per username); drops the database afterwards."""
    built = []

    def make(pair_limit="3 per 1 hour", ip_limit="100 per 1 hour", account_limit="1000 per 1 hour"):
        app = build_app(mongo_uri, db_name, LOGIN_RATE_LIMIT=pair_limit, LOGIN_IP_RATE_LIMIT=ip_limit,
                        LOGIN_USER_RATE_LIMIT=account_limit)
        built.append(app)
        return app

    yield make
    if built:
        with built[0].app_context():
            db.client().drop_database(db_name)


def assert_rate_limited_page(response):
    assert response.status_code == 429, response.status_code
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Too many failed logins. Try again in" in html
    assert 'role="alert"' in html and 'name="password"' in html  # the login form, with the message
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def assert_logged_out(client):
    assert_error(client.get("/api/batches"), 401, "unauthorized")


def test_failures_then_429_even_with_the_right_password(make_app, database):
    app = make_app(pair_limit="3 per 1 hour")
    make_user(app, "sam", "segmenter")
    client = app.test_client()

    for _ in range(3):
        assert login(client, "sam", "wrong-password").status_code == 401
    blocked = login(client, "sam", PASSWORD)

    retry_after = assert_rate_limited_page(blocked)
    assert retry_after <= 3600
    assert "60 minutes" in blocked.get_data(as_text=True)
    assert_logged_out(client)
    # Further attempts stay refused and are not checked at all.
    assert_rate_limited_page(login(client, "sam", "wrong-password"))
    assert_rate_limited_page(login(client, "sam", PASSWORD))
    assert_logged_out(client)


def test_json_login_over_the_limit_is_a_429_json_error(make_app):
    app = make_app(pair_limit="2 per 1 hour")
    make_user(app, "sam", "segmenter")
    client = app.test_client()
    token = hidden_csrf(client.get("/login").get_data(as_text=True))

    def attempt(password):
        return client.post("/login", data={"username": "sam", "password": password, "csrf_token": token},
                           headers={"Accept": "application/json"})

    for _ in range(2):
        assert_error(attempt("wrong-password"), 401)
    blocked = attempt(PASSWORD)

    body = assert_error(blocked, 429, "rate_limited")
    assert body["message"].startswith("Too many failed logins.")
    assert int(blocked.headers["Retry-After"]) >= 1
    assert_logged_out(client)


def test_successful_logins_are_not_counted(make_app):
    app = make_app(pair_limit="2 per 1 hour")
    make_user(app, "sam", "segmenter")

    for _ in range(5):
        assert login(app.test_client(), "sam").status_code == 302


def test_csrf_failures_are_not_counted(make_app):
    app = make_app(pair_limit="2 per 1 hour")
    make_user(app, "sam", "segmenter")
    client = app.test_client()

    for _ in range(4):
        assert client.post("/login", data={"username": "sam", "password": "x"}).status_code == 400

    assert login(client, "sam").status_code == 302


def test_another_user_from_the_same_address_still_logs_in(make_app):
    app = make_app(pair_limit="3 per 1 hour", ip_limit="100 per 1 hour")
    make_user(app, "sam", "segmenter")
    make_user(app, "olga", "segmenter")
    client = app.test_client()
    for _ in range(3):
        login(client, "sam", "wrong-password")
    assert_rate_limited_page(login(client, "sam", PASSWORD))

    other = app.test_client()
    assert login(other, "olga").status_code == 302
    assert other.get("/api/batches").status_code == 200
    # olga's own failures are counted on their own.
    for _ in range(2):
        assert login(app.test_client(), "olga", "wrong-password").status_code == 401
    assert login(app.test_client(), "olga").status_code == 302


def test_address_limit_blocks_every_username_from_that_address_only(make_app):
    app = make_app(pair_limit="100 per 1 hour", ip_limit="4 per 1 hour")
    make_user(app, "sam", "segmenter")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for name in ("ann", "bob", "cid", "dan"):
        assert login(attacker, name, "guess").status_code == 401

    # Over the address limit: even a right password for a user never tried from there.
    assert_rate_limited_page(login(attacker, "sam", PASSWORD))
    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert login(colleague, "sam").status_code == 302


def test_counter_is_shared_by_two_app_instances_and_lives_in_the_database(make_app, database):
    first, second = make_app(), make_app()
    assert first is not second
    assert first.extensions["segdash_login_limiter"] is not second.extensions["segdash_login_limiter"]
    make_user(first, "sam", "segmenter")
    clients = [first.test_client(), second.test_client()]

    for attempt in range(3):  # first, second, first
        assert login(clients[attempt % 2], "sam", "wrong-password").status_code == 401

    assert_rate_limited_page(login(clients[1], "sam", PASSWORD))
    assert_rate_limited_page(login(clients[0], "sam", PASSWORD))
    stored = {doc["_id"]: len(doc["entries"]) for doc in database[WINDOWS].find()}
    assert stored == {"LIMITER/login/pair:sam@127.0.0.1/3/1/hour": 3, "LIMITER/login/ip:127.0.0.1/100/1/hour": 3,
                      "LIMITER/login/user:sam/1000/1/hour": 3}
    # No count is kept anywhere else: once the database forgets, both instances let sam in.
    database[WINDOWS].delete_many({})
    assert login(clients[1], "sam").status_code == 302
    assert login(clients[0], "sam").status_code == 302


def test_the_window_expires(make_app):
    app = make_app(pair_limit="2 per 2 seconds")
    make_user(app, "sam", "segmenter")
    client = app.test_client()
    for _ in range(2):
        login(client, "sam", "wrong-password")
    assert assert_rate_limited_page(login(client, "sam", PASSWORD)) <= 3

    deadline = time.monotonic() + 20
    while True:
        response = login(client, "sam", PASSWORD)
        if response.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.25)

    assert response.status_code == 302
    assert client.get("/api/batches").status_code == 200


def test_names_that_cannot_exist_share_one_counter(make_app, database):
    app = make_app(pair_limit="3 per 1 hour")
    make_user(app, "sam", "segmenter")
    client = app.test_client()
    for name in ("<script>", "a b", "x" * 500):
        assert login(client, name, "guess").status_code == 401

    assert_rate_limited_page(login(client, "$ne", "guess"))
    assert login(client, "sam").status_code == 302
    keys = sorted(doc["_id"] for doc in database[WINDOWS].find())
    assert keys == ["LIMITER/login/ip:127.0.0.1/100/1/hour", "LIMITER/login/pair:~invalid@127.0.0.1/3/1/hour",
                    "LIMITER/login/user:~invalid/1000/1/hour"]


@pytest.mark.parametrize("setting", ["LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT", "LOGIN_USER_RATE_LIMIT"])
def test_a_malformed_limit_fails_at_startup(mongo_uri, db_name, setting):
    with pytest.raises(ValueError, match=setting):
        build_app(mongo_uri, db_name, **{setting: "lots"})


def test_an_attempt_costs_one_read_per_limit_and_a_failure_one_write_per_limit(make_app, commands):
    app = make_app()
    make_user(app, "sam", "segmenter")
    client = app.test_client()
    login(client, "sam", "warm-up")  # the storage's first use also ensures its TTL indexes

    def window_commands(password):
        commands.clear()
        login(client, "sam", password)
        return sorted(c["name"] for c in commands.snapshot() if c["collection"] == WINDOWS)

    assert window_commands("wrong-password") == ["aggregate"] * 3 + ["update"] * 3
    assert window_commands(PASSWORD) == ["aggregate"] * 3


@pytest.mark.system
def test_login_during_a_database_outage_is_503_not_a_crash():
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    app = build_app(uri, "segdash_outage", MONGO_SERVER_SELECTION_TIMEOUT_MS=500)
    client = app.test_client()
    token = hidden_csrf(client.get("/login").get_data(as_text=True))

    page = client.post("/login", data={"username": "sam", "password": "x", "csrf_token": token})
    as_json = client.post("/login", data={"username": "sam", "password": "x", "csrf_token": token},
                          headers={"Accept": "application/json"})

    assert page.status_code == 503 and page.mimetype == "text/html"
    assert_error(as_json, 503, "database_unavailable")


@pytest.mark.system
def test_failures_are_counted_across_gunicorn_workers(mongo_uri):
    """Two keep-alive connections served by two different worker processes take turns."""
    db_name = f"segdash_ratelimit_{uuid.uuid4().hex[:8]}"
    prepare_database(mongo_uri, db_name)
    make_user(build_app(mongo_uri, db_name), "lead1", "lead")  # now with a password
    server = GunicornServer(mongo_uri, db_name, workers=2, LOGIN_RATE_LIMIT="4 per 1 hour")
    sessions = []
    try:
        by_worker = {}
        for _ in range(20):
            session = requests.Session()
            sessions.append(session)
            page = session.get(server.base + "/login", timeout=10)
            assert page.status_code == 200
            by_worker.setdefault(served_by(server, page), session)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "20 connections were all served by one worker"
        pair = list(by_worker.items())

        for attempt in range(4):
            pid, session = pair[attempt % 2]
            response = post_login(session, server.base, "lead1", "wrong-password")
            assert response.status_code == 401
            assert served_by(server, response) == pid  # the connection stayed with its worker

        for pid, session in pair:
            response = post_login(session, server.base, "lead1", "password123")
            assert response.status_code == 429, (pid, response.status_code)
            assert int(response.headers["Retry-After"]) >= 1
            assert served_by(server, response) == pid
    finally:
        for session in sessions:
            session.close()
        server.close()
        drop_database(mongo_uri, db_name)


def post_login(session, base, username, password):
    token = hidden_csrf(session.get(base + "/login", timeout=10).text)
    return session.post(base + "/login", data={"username": username, "password": password,
                                                "csrf_token": token},
                        allow_redirects=False, timeout=30)


def served_by(server, response):
    """The pid of the worker whose log line carries the response's request id."""
    wanted = response.headers["X-Request-ID"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in server.json_lines():
            if line.get("request_id") == wanted and line.get("logger") == "segdash.request":
                return line["pid"]
        time.sleep(0.1)
    raise AssertionError(f"no log line for request {wanted}")


# --------------------------------------------------------------------------- no lockout switch


def from_address(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failures_from_elsewhere_do_not_lock_the_user_out(make_app):
    """The old lockout: ten wrong passwords from anywhere blocked the real user."""
    app = make_app(pair_limit="3 per 1 hour", account_limit="1000 per 1 hour")
    make_user(app, "sam", "segmenter")
    attacker = from_address(app, "203.0.113.9")
    for _ in range(3):
        assert login(attacker, "sam", "guess").status_code == 401
    assert_rate_limited_page(login(attacker, "sam", PASSWORD))

    assert login(from_address(app, "198.51.100.7"), "sam").status_code == 302


def test_the_username_ceiling_grows_in_tiers(make_app):
    """Many addresses guessing one account: a short wait first, then a long one."""
    app = make_app(pair_limit="100 per 1 hour", account_limit="3 per 2 seconds;5 per 1 hour")
    make_user(app, "sam", "segmenter")
    for index in range(3):
        assert login(from_address(app, f"203.0.113.{index}"), "sam", "guess").status_code == 401
    assert assert_rate_limited_page(login(from_address(app, "203.0.113.50"), "sam", PASSWORD)) <= 2
    time.sleep(2.1)
    for index in range(3, 5):
        assert login(from_address(app, f"203.0.113.{index}"), "sam", "guess").status_code == 401
    assert assert_rate_limited_page(login(from_address(app, "203.0.113.51"), "sam", PASSWORD)) > 3000


def test_a_browser_that_logged_in_before_passes_the_username_ceiling(make_app):
    app = make_app(pair_limit="3 per 1 hour", account_limit="4 per 1 hour")
    make_user(app, "sam", "segmenter")
    usual = app.test_client()
    first = login(usual, "sam")
    assert first.status_code == 302
    device = [v for k, v in first.headers.items() if k.lower() == "set-cookie" and v.startswith("segdash_device=")]
    assert device and "httponly" in device[0].lower() and "path=/login" in device[0].lower()
    for index in range(4):
        assert login(from_address(app, f"203.0.113.{index}"), "sam", "guess").status_code == 401
    assert_rate_limited_page(login(from_address(app, "198.51.100.7"), "sam", PASSWORD))

    assert login(usual, "sam").status_code == 302
    # It is held to the pair limit on its own count: three failures, then 429 there too.
    for _ in range(3):
        assert login(usual, "sam", "typo").status_code == 401
    assert_rate_limited_page(login(usual, "sam", PASSWORD))


def test_a_device_cookie_counts_only_for_its_own_user_and_signature(make_app):
    app = make_app(pair_limit="3 per 1 hour", account_limit="2 per 1 hour")
    make_user(app, "sam", "segmenter")
    make_user(app, "olga", "segmenter")
    olga_browser = app.test_client()
    assert login(olga_browser, "olga").status_code == 302
    forged = from_address(app, "203.0.113.70")
    forged.set_cookie("segdash_device", "eyJ1Ijoic2FtIiwiZCI6IngifQ.forged.sig", path="/login")
    for index in range(2):
        assert login(from_address(app, f"203.0.113.{index}"), "sam", "guess").status_code == 401

    assert_rate_limited_page(login(olga_browser, "sam", PASSWORD))
    assert_rate_limited_page(login(forged, "sam", PASSWORD))


def test_unlock_login_clears_every_count_of_that_user_only(make_app, database):
    from test_cli import run

    app = make_app(pair_limit="2 per 1 hour", account_limit="3 per 1 hour")
    make_user(app, "sam", "segmenter")
    make_user(app, "samuel", "segmenter")
    for index in range(3):
        login(from_address(app, f"203.0.113.{index}"), "sam", "guess")
    for _ in range(2):
        login(from_address(app, "203.0.113.1"), "samuel", "guess")
    assert_rate_limited_page(login(from_address(app, "198.51.100.7"), "sam", PASSWORD))

    result = run(app, "unlock-login", "sam")
    assert result.exit_code == 0, result.output
    assert login(from_address(app, "198.51.100.7"), "sam").status_code == 302
    assert login(from_address(app, "203.0.113.0"), "sam").status_code == 302
    # samuel's counts (a name starting with "sam") are untouched.
    assert_rate_limited_page(login(from_address(app, "203.0.113.1"), "samuel", PASSWORD))
    assert run(app, "unlock-login", "nobody").exit_code != 0
