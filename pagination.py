"""The one pagination helper: `per_page`, `page` (1-based) or an opaque `after` cursor.

A cursor is the last batch id of the previous page and that page's number, signed
with the app's secret (itsdangerous), so a tampered cursor is refused with 400.
"""
from dataclasses import dataclass

from flask import current_app, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from batch_ids import canonical_batch_id
from errors import bad_request
from validation import int_arg, single_value

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000
_SALT = "segdash.cursor"


@dataclass
class Paging:
    per_page: int
    page: int
    after: str | None  # the batch id to continue after (cursor paging), else None

    @property
    def skip(self):
        return 0 if self.after is not None else (self.page - 1) * self.per_page


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def encode_cursor(last_id, page):
    return _serializer().dumps([last_id, page])


def decode_cursor(token):
    try:
        last_id, page = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise bad_request(_("The 'after' cursor is not valid."), "invalid_cursor") from None
    if (not isinstance(last_id, str) or canonical_batch_id(last_id) != last_id
            or type(page) is not int or not 1 <= page <= MAX_PAGE):
        raise bad_request(_("The 'after' cursor is not valid."), "invalid_cursor")
    return last_id, page


def paging_from_request():
    per_page = int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    after = single_value(request.args, "after")
    if after:
        if "page" in request.args:
            raise bad_request(_("Use either 'page' or 'after', not both."), "invalid_parameter")
        if len(after) > 500:
            raise bad_request(_("The 'after' cursor is not valid."), "invalid_cursor")
        last_id, page = decode_cursor(after)
        return Paging(per_page=per_page, page=page, after=last_id)
    return Paging(per_page=per_page, page=int_arg("page", 1, 1, MAX_PAGE), after=None)


def page_envelope(items, total, paging, has_more, last_id):
    """The list response: items, total, page, per_page, next_cursor (None on the last page)."""
    next_cursor = encode_cursor(last_id, paging.page + 1) if has_more and last_id is not None else None
    return {"items": items, "total": total, "page": paging.page, "per_page": paging.per_page,
            "next_cursor": next_cursor}
