"""The one pagination helper: `per_page`, `page` (1-based) or an opaque `after` cursor.

A cursor is the last batch id of the previous page, the next page's number and the
list's sort, signed with the app's secret (itsdangerous), so a tampered cursor is
refused with 400. In id order the next page continues after that id; in any other
order it is the page of that number.
"""
import re
from dataclasses import dataclass
from typing import Annotated

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError, core_schema

from batch_ids import canonical_batch_id
from policy import N_
from validation import EmptyIsAbsent, Request, query_int

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000
_SALT = "segdash.cursor"
MAX_CURSOR = 500
CURSOR_PATTERN = "^[A-Za-z0-9_.-]*$"


@dataclass
class Paging:
    per_page: int
    page: int
    after: str | None  # the batch id to continue after (cursor paging in id order), else None
    sort: str = "id"

    @property
    def skip(self):
        return 0 if self.after is not None else (self.page - 1) * self.per_page


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def encode_cursor(last_id, page, sort="id"):
    return _serializer().dumps([last_id, page, sort])


def decode_cursor(token):
    """(last batch id, page, sort) of a cursor made by `encode_cursor`, else None."""
    if not isinstance(token, str) or len(token) > MAX_CURSOR or not re.fullmatch(CURSOR_PATTERN, token):
        return None
    try:
        last_id, page, sort = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if (not isinstance(last_id, str) or canonical_batch_id(last_id) != last_id
            or type(page) is not int or not 1 <= page <= MAX_PAGE or not isinstance(sort, str)):
        return None
    return last_id, page, sort


class Cursor:
    """The `after` parameter: a cursor made by this server, read as (last batch id, page, sort)."""

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_plain_validator_function(self._decode)

    def __get_pydantic_json_schema__(self, schema, handler):
        return {"type": "string", "maxLength": MAX_CURSOR, "pattern": CURSOR_PATTERN}

    @staticmethod
    def _decode(token):
        found = decode_cursor(token)
        if found is None:
            raise PydanticCustomError("invalid_cursor", N_("is not a cursor of this server."))
        return found


class PageQuery(Request):
    per_page: query_int(1, MAX_PER_PAGE) = Field(DEFAULT_PER_PAGE, description="Items per page.")
    page: query_int(1, MAX_PAGE) = Field(1, description="1-based page number. Not together with `after`.")
    after: Annotated[Annotated[tuple, Cursor()] | None, EmptyIsAbsent()] = Field(None, description=(
        "The `next_cursor` of the previous page (signed by the server; a changed or foreign cursor "
        "is refused with 400 `invalid_cursor`). An empty value is ignored."))

    @model_validator(mode="after")
    def _one_way_of_paging(self):
        if self.after is not None and "page" in self.model_fields_set:
            raise PydanticCustomError("invalid_parameter", N_("Use either 'page' or 'after', not both."))
        if self.after is not None and self.after[2] != self._sort():
            raise PydanticCustomError("invalid_cursor", N_("'after' is a cursor of another sort order."))
        return self

    def _sort(self):
        """The list's sort key (a query model with a `sort` field sets it)."""
        return getattr(self, "sort", None) or "id"

    def paging(self):
        sort = self._sort()
        if self.after is not None:
            last_id, page, _ = self.after
            return Paging(per_page=self.per_page, page=page, after=last_id if sort.lstrip("-") == "id" else None,
                          sort=sort)
        return Paging(per_page=self.per_page, page=self.page, after=None, sort=sort)


def page_envelope(items, total, paging, has_more, last_id):
    """The list response: items, total, page, per_page, next_cursor (None on the last page)."""
    next_cursor = (encode_cursor(last_id, paging.page + 1, paging.sort)
                   if has_more and last_id is not None else None)
    return {"items": items, "total": total, "page": paging.page, "per_page": paging.per_page,
            "next_cursor": next_cursor}
