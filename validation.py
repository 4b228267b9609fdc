"""Reading and checking request input. Every problem becomes a 400 ApiError.

Values that reach a MongoDB query are plain strings, numbers or lists of strings
after these checks: an operator object (`{"$ne": …}`), a `$`-prefixed or dotted
key, or a wrong type never gets through.
"""
import re

from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest

from errors import bad_request

MAX_STRING = 200
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def json_body(allowed_keys):
    """The request's JSON object, with only `allowed_keys` (400 otherwise)."""
    if not request.is_json:
        raise bad_request(_("Send a JSON object with Content-Type: application/json."), "invalid_json")
    try:
        body = request.get_json()
    except (BadRequest, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise bad_request(_("The body is not valid JSON."), "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(_("The body must be a JSON object."), "invalid_json")
    unknown = sorted(str(key) for key in body if key not in allowed_keys)
    if unknown:
        raise bad_request(_("Unknown field(s): %(fields)s.", fields=", ".join(unknown)[:MAX_STRING]), "unknown_field")
    return body


def plain_string(value, field, max_length=MAX_STRING, allow_empty=False):
    """`value` when it is a string of sane length without control characters."""
    if not isinstance(value, str):
        raise bad_request(_("'%(field)s' must be a string.", field=field), "invalid_type")
    if len(value) > max_length:
        raise bad_request(_("'%(field)s' is longer than %(max)s characters.", field=field, max=max_length), "too_long")
    if not allow_empty and not value.strip():
        raise bad_request(_("'%(field)s' must not be empty.", field=field), "invalid_value")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise bad_request(_("'%(field)s' contains control characters.", field=field), "invalid_value")
    return value


def single_value(fields, name):
    """The one value of `name` in a query string or form (None when absent); 400 when repeated,
    since which of two values was meant cannot be known."""
    values = fields.getlist(name)
    if len(values) > 1:
        raise bad_request(_("'%(name)s' is given more than once.", name=name), "invalid_parameter")
    return values[0] if values else None


def int_arg(name, default, minimum, maximum):
    """An integer query parameter within [minimum, maximum]."""
    raw = single_value(request.args, name)
    if raw is None:
        return default
    raw = raw.strip()
    if len(raw) > 12 or not _WHOLE_NUMBER.fullmatch(raw):
        raise bad_request(_("'%(name)s' must be a whole number.", name=name), "invalid_parameter")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise bad_request(_("'%(name)s' must be between %(min)s and %(max)s.", name=name, min=minimum, max=maximum),
                          "out_of_range")
    return value


def string_arg(name, max_length=MAX_STRING):
    raw = single_value(request.args, name)
    if raw is None or raw == "":
        return None
    return plain_string(raw, name, max_length)


def choice_arg(name, choices):
    raw = string_arg(name)
    if raw is not None and raw not in choices:
        raise bad_request(_("'%(name)s' must be one of: %(choices)s.", name=name, choices=", ".join(choices)),
                          "invalid_parameter")
    return raw

