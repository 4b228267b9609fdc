"""Reading and checking request input against its schema. Every problem becomes a 400 ApiError.

Requests are described once, as pydantic models (api/schemas.py): the same models
validate the request and make the OpenAPI document (api/openapi.py). The field types
below carry the rules that are not plain JSON Schema (plain strings, whole numbers in
a query string, choices with their own error code), each with its check and its
JSON Schema side by side; `problem()` turns pydantic's error types into the API's codes.

Values that reach a MongoDB query are plain strings, numbers or lists of strings
after these checks: an operator object (`{"$ne": …}`), a `$`-prefixed or dotted
key (unknown fields are refused), or a wrong type never gets through.
"""
import re
from typing import Annotated

from annotated_types import Ge, Le
from flask import current_app, request
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError, core_schema
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from errors import bad_request
from policy import N_

MAX_STRING = 200
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
_CONTROL = r"\x00-\x1f\x7f"
# The characters str.strip() removes that are not control characters.
_SPACE = r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A plain string: no control characters, and something besides white space.
PLAIN_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
_CONTROL_CHARACTER = re.compile(f"[{_CONTROL}]")


class Request(BaseModel):
    """Base of every request schema: unknown fields are refused, nothing is coerced."""
    model_config = ConfigDict(extra="forbid", strict=True)


class PlainString:
    """Not blank, no control characters, at most `max_length` characters (checked in Python:
    a lone surrogate is a character like any other here, and is left to the field's meaning)."""

    CONTROL = _CONTROL_CHARACTER

    def __init__(self, max_length=MAX_STRING):
        self.max_length = max_length

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_plain_validator_function(self._check)

    def __get_pydantic_json_schema__(self, schema, handler):
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": PLAIN_PATTERN}

    def _check(self, value):
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_type", N_("must be a string."))
        if len(value) > self.max_length:
            raise PydanticCustomError("string_too_long", N_("is longer than %(max_length)s characters."),
                                      {"max_length": self.max_length})
        if not value.strip():
            raise PydanticCustomError("invalid_value", N_("must not be empty."))
        if self.CONTROL.search(value):
            raise PydanticCustomError("invalid_value", N_("contains control characters."))
        return value


def plain_string(value, field, max_length=MAX_STRING):
    """`value` checked as a plain string outside a request (an import file); a 400 ApiError otherwise."""
    try:
        return PlainString(max_length)._check(value)
    except PydanticCustomError as exc:
        text = _(exc.message_template, **(exc.context or {}))
        raise bad_request(f"'{field}' {text}", CODES.get(exc.type, exc.type)) from None


def plain(max_length=MAX_STRING):
    return Annotated[str, PlainString(max_length)]


_TEXT_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_TEXT_CONTROL_CHARACTER = re.compile(f"[{_TEXT_CONTROL}]")
TEXT_PATTERN = f"^[^{_TEXT_CONTROL}]*[^{_TEXT_CONTROL}{_SPACE}\\t\\n\\r][^{_TEXT_CONTROL}]*$"


class Text(PlainString):
    """A plain string that may also hold line breaks and tabs (a sentence or a few for people)."""

    CONTROL = _TEXT_CONTROL_CHARACTER

    def __get_pydantic_json_schema__(self, schema, handler):
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": TEXT_PATTERN}


def text(max_length=MAX_STRING):
    return Annotated[str, Text(max_length)]


class Choice:
    """One of `values` (as well as the type's own checks); anything else answers `code`."""

    def __init__(self, values, code="invalid_parameter"):
        self.values = tuple(values)
        self.code = code

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        return {**handler(schema), "enum": list(self.values)}

    def _check(self, value):
        if value not in self.values:
            raise PydanticCustomError(self.code, N_("must be one of: %(choices)s."),
                                      {"choices": ", ".join(self.values)})
        return value


class QueryInt:
    """A whole number written in a query string (`invalid_parameter` when it is not one)."""

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_before_validator_function(self._parse, handler(source))

    @staticmethod
    def _parse(raw):
        text = raw.strip() if isinstance(raw, str) else ""
        if len(text) > 12 or not _WHOLE_NUMBER.fullmatch(text):
            raise PydanticCustomError("invalid_parameter", N_("must be a whole number."))
        return int(text)


class JsonInt:
    """A whole number in a JSON body (918.0 is the number 918 in JSON); any other value is out of range."""

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_before_validator_function(self._parse, handler(source))

    @staticmethod
    def _parse(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if type(value) is not int:
            raise PydanticCustomError("out_of_range", N_("is not a whole number."))
        return value


class AtMostSetting:
    """At most the app's setting `name` (a bound the deployment chooses)."""

    def __init__(self, name):
        self.name = name

    def limit(self):
        return current_app.config[self.name]

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        return {**handler(schema), "maximum": self.limit()}

    def _check(self, value):
        if value > self.limit():
            raise PydanticCustomError("out_of_range", N_("is above the maximum."))
        return value


class EmptyIsAbsent:
    """In a query string or form, an empty value is the same as none."""

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_before_validator_function(lambda v: None if v == "" else v, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        found = handler(schema)
        options = [option for option in found.get("anyOf", [found]) if option.get("type") != "null"]
        inner = options[0] if len(options) == 1 else {"anyOf": options}
        if inner.get("type") == "string" and not inner.get("minLength") and "enum" not in inner:
            return inner  # "" is one of its values already
        if "enum" in inner:  # the choices alone say all there is
            return {key: inner[key] for key in ("type", "description") if key in inner} | {
                "enum": ["", *inner["enum"]]}
        return {"anyOf": [{"const": ""}, inner]}


def query_int(minimum, maximum):
    return Annotated[int, Ge(minimum), Le(maximum), QueryInt()]


def query_text(max_length=MAX_STRING):
    return Annotated[plain(max_length) | None, EmptyIsAbsent()]


def query_choice(values):
    return Annotated[Annotated[plain(), Choice(values)] | None, EmptyIsAbsent()]


class UploadedFile:
    """A file part of a multipart form (a werkzeug FileStorage)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        return core_schema.no_info_plain_validator_function(cls._check)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema, handler):
        return {"type": "string", "format": "binary"}

    @staticmethod
    def _check(value):
        if not isinstance(value, FileStorage):
            raise PydanticCustomError("invalid_type", N_("must be a file."))
        return value


# ----------------------------------------------------------------------------- errors

# Codes that the types above and the schemas' own validators raise as they are, with their message.
CUSTOM = {"invalid_parameter", "invalid_value", "invalid_type", "invalid_status", "invalid_batch_id",
          "invalid_cursor", "out_of_range"}
# pydantic's own error types → the API's codes (anything else is `invalid_type`).
CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "invalid_value",
    "string_too_long": "too_long",
    "too_short": "invalid_type",  # an empty list where items are needed
    "too_long": "too_many",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
}
MESSAGES = {
    "missing": N_("is required."),
    "string_too_long": N_("is longer than %(max_length)s characters."),
    "too_short": N_("must be a non-empty list."),
    "too_long": N_("has more than %(max_length)s items."),
}


def bounds(model, name):
    """(minimum, maximum) of an integer field, read from its annotations."""
    low = high = None
    for item in model.model_fields[name].metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, AtMostSetting):
            high = item.limit()
    return low, high


def problem(model, error, missing=None):
    """The ApiError for one pydantic error of `model`; `missing` gives (code, message) by field."""
    field = str(error["loc"][0]) if error["loc"] else None
    kind = error["type"]
    if kind == "missing" and missing and field in missing:
        return bad_request(_(missing[field][1]), missing[field][0])
    code = CODES.get(kind) or (kind if kind in CUSTOM else "invalid_type")
    if code == "out_of_range" and field in model.model_fields:
        low, high = bounds(model, field)
        if any(isinstance(item, JsonInt) for item in model.model_fields[field].metadata):
            return bad_request(_("'%(field)s' must be a whole number from %(low)s to %(high)s.",
                                 field=field, low=low, high=high), code)
        return bad_request(_("'%(field)s' must be between %(low)s and %(high)s.", field=field, low=low, high=high),
                           code)
    # The message templates are msgids (gettext style, filled from the error's context).
    if kind in MESSAGES:
        text = _(MESSAGES[kind], **error.get("ctx", {}))
    else:  # a custom type's message is complete
        text = _(error["msg"], **error.get("ctx", {})) if kind in CUSTOM else _("has the wrong type.")
    return bad_request(f"'{field}' {text}" if field else text, code)


def validate(model, data, missing=None):
    """`data` checked against `model`: unknown fields first, then the first field in error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
        if unknown:
            raise bad_request(_("Unknown field(s): %(fields)s.", fields=", ".join(unknown)[:MAX_STRING]),
                              "unknown_field") from None
        raise problem(model, errors[0], missing) from None


# ----------------------------------------------------------------------------- reading a request


def single_value(fields, name):
    """The one value of `name` in a query string or form (None when absent); 400 when repeated,
    since which of two values was meant cannot be known."""
    values = fields.getlist(name)
    if len(values) > 1:
        raise bad_request(_("'%(name)s' is given more than once.", name=name), "invalid_parameter")
    return values[0] if values else None


def _fields(model, source):
    """The model's fields present in a MultiDict (other names are ignored, as in any query string)."""
    return {name: value for name in model.model_fields if (value := single_value(source, name)) is not None}


def query(model):
    return validate(model, _fields(model, request.args))


def form(model, missing=None):
    """A multipart form: file fields from the uploaded files, the others from the text fields."""
    files = {name for name, info in model.model_fields.items() if info.annotation is UploadedFile}
    data = {**_fields(model, request.form), **_fields(model, request.files)}
    data = {name: value for name, value in data.items() if (name in files) == isinstance(value, FileStorage)}
    return validate(model, data, missing)


def json_object():
    """The request's JSON object (400 `invalid_json` for anything else)."""
    if not request.is_json:
        raise bad_request(_("Send a JSON object with Content-Type: application/json."), "invalid_json")
    try:
        body = request.get_json()
    except (BadRequest, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise bad_request(_("The body is not valid JSON."), "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(_("The body must be a JSON object."), "invalid_json")
    return body


def json_body(model, optional=False):
    """The JSON body checked against `model`; with `optional`, an empty body is `{}`."""
    if optional and not request.get_data(cache=True):
        return validate(model, {})
    return validate(model, json_object())

