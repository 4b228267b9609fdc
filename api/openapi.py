"""The OpenAPI 3.1 document, written from the routes' contracts (api/contract.py).

Every API route's role, parameters, bodies and responses come from the `operation`
that guards it, and every schema from pydantic (api/schemas.py): nothing here states
a bound of its own. Built once per app, on first request.
"""
import re

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

import logs
from api import schemas

REF = "#/components/schemas/{model}"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
REQUEST_ID = {"$ref": "#/components/headers/RequestId"}

INFO = {
    "title": "SegDash API",
    "version": "1.0",
    "summary": "Batches of images, their segmenters and their mask files.",
    "description": """\
The JSON API behind the SegDash dashboard. This document is generated from the schemas the
server validates requests with; it is served at `GET /api/openapi.json` (and `.yaml`), and
browsable at `/api/docs/`.

Every error is `{"error": "<code>", "message": "<text>", "request_id": "<id>"}` with its HTTP
status; the request id is also sent in the `X-Request-ID` header of every response (an
incoming `X-Request-ID` that is a short safe token is kept). Timestamps are ISO-8601 UTC
with milliseconds (`2026-11-23T12:00:00.000Z`).

Identity: `Authorization: Bearer <token>` (tokens from `flask --app app create-token`), or
the browser session cookie from `/login`. Writes authenticated by the cookie must also send
the session's CSRF token in `X-CSRFToken`. Without identity the API answers 401, below the
operation's role (`x-required-role`) 403. Roles rank `segmenter` < `lead` < `admin`.

Text parameters are "plain strings": not blank, no control characters (U+0000–U+001F,
U+007F), at most the stated length; anything else is refused with 400. Unknown fields in a
body are refused (`unknown_field`); a query parameter given twice is refused
(`invalid_parameter`).""",
    "license": {"name": "Proprietary"},
}

ERRORS = {
    400: "The request is malformed or a value is out of range (`invalid_parameter`, `out_of_range`, "
         "`invalid_json`, `unknown_field`, `invalid_type`, `invalid_value`, `too_long`, `too_many`, "
         "`invalid_status`, `invalid_assignee`, `invalid_batch_id`, `invalid_cursor`, `reason_required`, "
         "`csrf_failed` …). "
         "Nothing was changed.",
    401: "No identity (no valid Bearer token or session).",
    403: "The user's role, or the batch's assignee, does not allow this.",
    404: "No such item (`not_found`), or nothing of the kind asked for (`nothing_to_review`).",
    409: "The change is not possible now: `invalid_transition`, `concurrent_update`, `batch_closed`, "
         "`incomplete_masks` (then with `mask_count` and `image_count`), "
         "or `job_running` (then with the running job's `job_id`).",
    413: "The request body (an upload, or any other) is larger than MAX_UPLOAD_MB.",
    415: "The file is not an image (`not_an_image`).",
    422: "The image is damaged (`broken_image`) or too large to decode safely (`image_too_large`).",
    429: "Too many expensive requests (searches, exports, audits) by this user in a short time "
         "(`rate_limited`); the `Retry-After` header says when to try again.",
    503: "The database is not reachable right now (answered within about 2 s); retry shortly.",
}


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field."""

    def field_title_should_be_set(self, schema):
        return False


class _Components:
    def __init__(self):
        self.schemas = {}

    def schema(self, kind, mode):
        """A JSON Schema for `kind`, a $ref when it is a model; its nested models go to components."""
        found = TypeAdapter(kind).json_schema(mode=mode, ref_template=REF, schema_generator=_Generator)
        self.schemas.update(found.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.schemas[kind.__name__] = found
            return {"$ref": REF.format(model=kind.__name__)}
        return found

    def inline(self, model, mode="validation"):
        found = TypeAdapter(model).json_schema(mode=mode, ref_template=REF, schema_generator=_Generator)
        self.schemas.update(found.pop("$defs", {}))
        return found


def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _path(rule):
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _error(status):
    return {"description": ERRORS[status], "headers": {"X-Request-ID": REQUEST_ID},
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def _operation(rule, method, contract, components):
    operation = {"tags": [contract.tag], "operationId": _camel(rule.endpoint.rpartition(".")[2]),
                 "summary": contract.summary}
    if contract.description:
        operation["description"] = contract.description
    if contract.role:
        operation["x-required-role"] = contract.role
        if method in WRITE_METHODS:
            # A cookie alone is not enough for a write: the CSRF header goes with it.
            operation["security"] = [{"bearerAuth": []}, {"sessionCookie": [], "csrfToken": []}]
    else:
        operation["security"] = []

    parameters = [{"name": name, "in": "path", "required": True,
                   "description": "Anything that names no existing item is 404.",
                   "schema": {"type": "string", "minLength": 1}} for name in sorted(rule.arguments)]
    if contract.query is not None:
        found = components.inline(contract.query)
        for name, schema in found["properties"].items():
            parameter = {"name": name, "in": "query", "required": name in found.get("required", [])}
            if "description" in schema:
                parameter["description"] = schema.pop("description")
            if schema.get("default", "") is None:  # absent means no value, not null
                del schema["default"]
            parameters.append({**parameter, "schema": schema})
    if parameters:
        operation["parameters"] = parameters

    if contract.body is not None:
        operation["requestBody"] = {"required": not contract.body_optional, "content": {
            "application/json": {"schema": components.schema(contract.body, "validation")}}}
    elif contract.form is not None:
        operation["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": components.inline(contract.form)}}}

    responses = {}
    for status, reply in contract.responses.items():
        response = {"description": reply.description, "headers": {"X-Request-ID": REQUEST_ID, **{
            name: {"schema": schema} for name, schema in reply.headers.items()}}}
        if reply.media:
            schema = (reply.model if isinstance(reply.model, dict) or reply.model is None
                      else components.schema(reply.model, "serialization")) or {"type": "string"}
            response["content"] = {reply.media: {"schema": schema}}
        responses[str(status)] = response
    errors = set(contract.errors)
    if contract.query or contract.body or contract.form:
        errors.add(400)
    if contract.body or contract.form:
        errors.add(413)
    if rule.arguments:
        errors.add(404)
    if contract.role:
        errors |= {401, 503}
        if contract.role != "segmenter" or method in WRITE_METHODS:
            errors.add(403)
    for status in sorted(errors - set(contract.responses)):
        responses[str(status)] = _error(status)
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def build(app):
    """The document for `app`'s routes: every route whose view has a contract."""
    components = _Components()
    components.schema(schemas.Error, "serialization")
    paths = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        contract = getattr(app.view_functions[rule.endpoint], "contract", None)
        if contract is None:
            continue
        item = paths.setdefault(_path(rule), {})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _operation(rule, method, contract, components)
    tags = sorted({operation["tags"][0] for item in paths.values() for operation in item.values()})
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in tags],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": (
                    "An API token (`flask --app app create-token USERNAME`). A Bearer header is the whole "
                    "identity; the session cookie is then not looked at.")},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": app.config["SESSION_COOKIE_NAME"],
                                  "description": "The signed Flask session cookie set by `POST /login`."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": app.config["WTF_CSRF_HEADERS"][0],
                              "description": (
                                  "The session's CSRF token (the `csrf-token` meta tag of any page); required "
                                  "on writes authenticated by the session cookie (400 `csrf_failed` otherwise).")},
            },
            "headers": {"RequestId": {
                "description": "This request's id, as in the logs (the client's own when it sent a safe one).",
                # What logs.py keeps of a client's id; the ids it makes itself (hex) match too.
                "schema": {"type": "string", "pattern": f"^{logs._SAFE_ID.pattern}$"}}},
            "schemas": dict(sorted(components.schemas.items())),
        },
    }


def document(app):
    """The app's document, built on first use (bounds read from the app's settings)."""
    if "segdash_openapi" not in app.extensions:
        with app.app_context():
            app.extensions["segdash_openapi"] = build(app)
    return app.extensions["segdash_openapi"]
