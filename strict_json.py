"""JSON decoding that refuses an object with the same key twice.

Python's decoder keeps the last of duplicate keys, so `{"status": "a", "status": "b"}`
would mean whatever the last one says, unseen by anything that looked at the first.
Like a query parameter given twice, such a body is refused: the error becomes the
request's BadRequest (400 `invalid_json`), whichever parser reads the body.
"""
from flask.json.provider import DefaultJSONProvider


class DuplicateKeyError(ValueError):
    pass


def unique_keys(pairs):
    found = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(f"the key {key[:100]!r} appears more than once in an object")
        found[key] = value
    return found


class StrictJSONProvider(DefaultJSONProvider):
    def loads(self, s, **kwargs):
        kwargs.setdefault("object_pairs_hook", unique_keys)
        return super().loads(s, **kwargs)


def init_app(app):
    app.json = StrictJSONProvider(app)
