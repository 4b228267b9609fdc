"""The OpenAPI document: generated from the routes' schemas, served, valid, and true to the app."""
import re

import pytest
import yaml

import auth
import jobs
import policy
from api.schemas import MAX_JOBS, MAX_LIST_LIMIT
from checks import assert_error
from helpers import build_app, make_user
from pagination import MAX_PAGE, MAX_PER_PAGE
from validation import PLAIN_PATTERN

METHODS = {"get", "post", "patch", "put", "delete"}
WRITE_METHODS = {"post", "patch", "put", "delete"}
PUBLIC = {("get", "/healthz"), ("get", "/api/openapi.json"), ("get", "/api/openapi.yaml")}
DOCS_PAGE = "docs_ui."  # the browsable page's blueprint: HTML and its assets, not API operations


@pytest.fixture
def document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(document):
    """{(method, path): operation} of the document."""
    return {(method, path): operation
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def shape(path):
    """A path with its parameters blanked: `/api/batches/<path:raw_id>` and `/api/batches/{raw_id}` → `/api/batches/{}`."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def app_routes(app):
    """{(method, path shape)} of the app's JSON API: every /api route but the docs page, and /healthz."""
    return {(method.lower(), shape(rule.rule))
            for rule in app.url_map.iter_rules()
            if (rule.rule.startswith("/api/") or rule.rule == "/healthz") and not rule.endpoint.startswith(DOCS_PAGE)
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def resolve(document, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def parameters(document, path, operation):
    found = [resolve(document, p) for p in document["paths"][path].get("parameters", [])]
    return found + [resolve(document, p) for p in operation.get("parameters", [])]


def test_the_document_describes_exactly_the_apps_api_routes(app, document):
    described = {(method, shape(path)) for method, path in operations(document)}
    routes = app_routes(app)
    assert routes - described == set(), "routes missing from the document"
    assert described - routes == set(), "the document describes routes the app does not have"


def test_the_document_is_served_as_json_and_yaml_without_login(client, document):
    assert document["openapi"].startswith("3.1")
    response = client.get("/api/openapi.yaml")

    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data()) == document


def test_the_docs_page_shows_the_document_with_the_packaged_swagger_ui(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '"url": "/api/openapi.json"' in html
    for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()
    assert "/api/docs/swagger-ui-bundle.js" in html


def test_it_is_a_valid_openapi_document_for_schemathesis(app):
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    found = {(op.ok().method.lower(), shape(op.ok().path)) for op in schema.get_all_operations()}
    # Schemathesis leaves out the operation that served the document itself.
    assert found | {("get", "/api/openapi.json")} == app_routes(app)


def test_both_security_schemes_match_the_app(app, document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert (schemes["sessionCookie"]["type"], schemes["sessionCookie"]["in"]) == ("apiKey", "cookie")
    assert schemes["sessionCookie"]["name"] == app.config["SESSION_COOKIE_NAME"]
    assert (schemes["csrfToken"]["type"], schemes["csrfToken"]["in"]) == ("apiKey", "header")
    assert schemes["csrfToken"]["name"] in app.config["WTF_CSRF_HEADERS"]
    assert document["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
    for (method, path), operation in operations(document).items():
        security = operation.get("security", document["security"])
        if (method, path) in PUBLIC:
            assert security == [], (method, path)
            continue
        assert {"bearerAuth": []} in security, (method, path)
        if method in WRITE_METHODS:
            # A cookie alone is not enough for a write: the CSRF header goes with it.
            assert {"sessionCookie": [], "csrfToken": []} in security, (method, path)
            assert {"sessionCookie": []} not in security, (method, path)
        else:
            assert {"sessionCookie": []} in security, (method, path)
        assert "401" in operation["responses"], (method, path)


def test_the_documented_cookie_and_csrf_header_are_the_ones_that_work(client, database, document, seg):
    """Log in, then call the API with only the documented cookie, and write with the documented header."""
    from factories import insert_batches
    from test_auth import login, page_csrf

    schemes = document["components"]["securitySchemes"]
    insert_batches(database, [1], assignee="sam", status="assigned")
    assert login(client, "sam").status_code == 302
    assert client.get_cookie(schemes["sessionCookie"]["name"]) is not None
    assert client.get("/api/batches").status_code == 200

    body = {"status": "in_progress"}
    assert_error(client.patch("/api/batches/batch_0001", json=body), 400, "csrf_failed")
    response = client.patch("/api/batches/batch_0001", json=body,
                            headers={schemes["csrfToken"]["name"]: page_csrf(client)})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "in_progress"


def test_the_documented_roles_are_enforced(client, document, seg):
    """A segmenter is refused (403) exactly the operations whose `x-required-role` is above theirs."""
    dummy = {"raw_id": "batch_0001", "file_id": "0123456789abcdef01234567", "job_id": "0123456789abcdef01234567"}
    for (method, path), operation in operations(document).items():
        if (method, path) in PUBLIC:
            assert "x-required-role" not in operation
            continue
        role = operation["x-required-role"]
        assert role in auth.ROLES, (method, path)
        response = client.open(path.format(**dummy), method=method.upper(), headers=seg)
        response.get_data()
        response.close()
        if role == "segmenter":
            assert response.status_code not in (401, 403), (method, path, response.status_code)
            assert "403" in operation["responses"] or method == "get", (method, path)
        else:
            assert_error(response, 403, "forbidden")
            assert "403" in operation["responses"], (method, path)


def test_every_documented_error_has_the_one_error_shape(document):
    error = document["components"]["schemas"]["Error"]
    # The keys tests/checks.assert_error requires, plus job_running's job_id and incomplete_masks' counts.
    assert set(error["required"]) == {"error", "message", "request_id"}
    assert set(error["properties"]) == {"error", "message", "request_id", "job_id", "mask_count", "image_count"}
    for (method, path), operation in operations(document).items():
        for status, response in operation["responses"].items():
            response = resolve(document, response)
            assert "X-Request-ID" in response.get("headers", {}), (method, path, status)
            if int(status) >= 400 and (method, path) not in PUBLIC:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_enums_and_limits_are_the_codes_own(app, document):
    schemas = document["components"]["schemas"]
    assert schemas["BatchChange"]["properties"]["status"]["enum"] == list(policy.STATUSES)
    ops = operations(document)
    by_name = {(method, path, p["name"]): p for (method, path), op in ops.items()
               for p in parameters(document, path, op)}
    assert by_name[("get", "/api/batches", "status")]["schema"]["enum"] == ["", *policy.STATUSES]
    assert by_name[("get", "/api/jobs", "kind")]["schema"]["enum"] == ["", *jobs.KINDS]
    assert by_name[("get", "/api/jobs", "limit")]["schema"]["maximum"] == MAX_JOBS
    assert by_name[("get", "/api/users", "role")]["schema"]["enum"] == ["", *auth.ROLES]
    assert by_name[("get", "/api/batches", "per_page")]["schema"]["maximum"] == MAX_PER_PAGE
    assert by_name[("get", "/api/batches", "page")]["schema"]["maximum"] == MAX_PAGE
    assert by_name[("get", "/api/check-mongo-files", "limit")]["schema"]["maximum"] == MAX_LIST_LIMIT
    create_limit = app.config["AUTO_CREATE_LIMIT"]
    assert by_name[("post", "/api/auto-create-batches", "limit")]["schema"]["maximum"] == create_limit
    assert schemas["AutoCreateOptions"]["properties"]["limit"]["maximum"] == create_limit


def test_a_bound_from_a_setting_is_documented_and_enforced_with_the_apps_value(app, mongo_uri, db_name):
    """AUTO_CREATE_LIMIT is the auto-create maximum: the document states this app's value, and enforces it."""
    small = build_app(mongo_uri, db_name, AUTO_CREATE_LIMIT=7)  # on `app`'s database, dropped with it
    client = small.test_client()
    body = client.get("/api/openapi.json").get_json()["components"]["schemas"]["AutoCreateOptions"]
    assert body["properties"]["limit"]["maximum"] == 7

    lead = make_user(small, "lead1", "lead")
    error = assert_error(client.post("/api/auto-create-batches", json={"limit": 8}, headers=lead), 400, "out_of_range")
    assert "from 1 to 7" in error["message"]
    accepted = client.post("/api/auto-create-batches", json={"limit": 7}, headers=lead)
    assert accepted.status_code == 202
    with small.app_context():
        import db

        assert db.jobs().find_one({"kind": "auto_create"})["params"] == {"limit": 7}


def test_the_documented_plain_string_pattern_agrees_with_the_validation(document):
    """The pattern a client sees accepts exactly the strings the server accepts (white space as str.strip sees it)."""
    from pydantic_core import PydanticCustomError

    from validation import PlainString

    pattern = document["components"]["schemas"]["BatchChange"]["properties"]["assignee"]["anyOf"][0]["pattern"]
    assert pattern == PLAIN_PATTERN
    plain = re.compile(pattern)
    check = PlainString(64)._check
    texts = ["sam", " sam ", "Ünïcødé", "a b", "", " ", "\t", "\u3000", "\x85", "\xa0x", "a\nb",
             "a\x7f", "\u2028", "x\u200b", "\u180e", "\x1c", "\ufeff", "B 0007"]
    texts += [chr(n) for n in range(0x3100) if chr(n).isspace()]
    for text in texts:
        try:
            check(text)
            accepted = True
        except PydanticCustomError:
            accepted = False
        assert bool(plain.fullmatch(text)) == accepted, repr(text)


def query_cases(document):
    """(path, parameter name, value, accepted?) at the edges of every documented GET query parameter."""
    cases = []
    for (method, path), operation in operations(document).items():
        if method != "get":
            continue
        for param in parameters(document, path, operation):
            if param["in"] != "query":
                continue
            schema = resolve(document, param["schema"])
            if schema.get("type") == "integer":
                low, high = schema["minimum"], schema["maximum"]
                cases += [(path, param["name"], str(low), True), (path, param["name"], str(high), True),
                          (path, param["name"], str(low - 1), False), (path, param["name"], str(high + 1), False),
                          (path, param["name"], "1.5", False), (path, param["name"], "ten", False)]
            elif "enum" in schema:
                cases += [(path, param["name"], value, True) for value in schema["enum"]]
                cases.append((path, param["name"], schema["enum"][-1] + "x", False))
            elif "anyOf" in schema:
                text = resolve(document, schema["anyOf"][1])
                longest = text["maxLength"]
                cases += [(path, param["name"], "", True), (path, param["name"], "a" * longest, True),
                          (path, param["name"], "a" * (longest + 1), False),
                          (path, param["name"], "   ", False), (path, param["name"], "a\x01b", False)]
    return cases


def test_query_parameters_are_enforced_exactly_as_documented(client, lead, document):
    """Every documented bound, enum and length of the GET endpoints, checked against the app."""
    cases = query_cases(document)
    assert {(path, name) for path, name, _v, _ok in cases} >= {
        ("/api/batches", "per_page"), ("/api/batches", "page"), ("/api/batches", "status"),
        ("/api/batches", "assignee"), ("/api/batches", "q"), ("/api/jobs", "limit"),
        ("/api/check-mongo-files", "limit"), ("/api/export/batches.csv", "status")}
    for path, name, value, accepted in cases:
        response = client.get(path, query_string={name: value}, headers=lead)
        response.get_data()  # drain the streamed CSV export
        response.close()
        if accepted:
            # A path naming an item (`{file_id}` taken literally) names none, and the empty database has
            # no batch to review (nor one named by `after`): the query passed, then 404.
            expected = 404 if "{" in path or path == "/api/review/next" else 200
            assert response.status_code == expected, (path, name, value, response.get_data(as_text=True))
        else:
            assert_error(response, 400)


def test_a_repeated_query_parameter_is_refused(client, lead):
    response = client.get("/api/batches?status=pending&status=no-such-status", headers=lead)
    assert_error(response, 400, "invalid_parameter")


def test_an_integral_json_number_is_an_integer(client, lead):
    response = client.post("/api/auto-create-batches", json={"limit": 25.0}, headers=lead)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_a_repeated_upload_form_field_is_refused(client, lead):
    import io

    response = client.post("/api/masks", headers=lead, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"P1\n1 1\n1\n"), "m.pbm"), "filename": ["a.pbm", "b.pbm"]})
    assert_error(response, 400)
