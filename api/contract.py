"""`operation`: a route's contract (role, input schemas, responses), enforced and recorded.

The decorator checks the role (auth.require_role), reads and validates the input
against its schemas (validation.py) and passes the parsed models to the view as
`query=`, `body=` and `form=`. It also keeps the same facts on the view, where
api/openapi.py reads them to write the OpenAPI document: what is enforced is what is
documented.
"""
import functools
import inspect
from dataclasses import dataclass, field

import validation
from auth import require_role


@dataclass(frozen=True)
class Reply:
    """One documented response: its description, and its body's model or media type."""
    description: str
    model: object = None  # a pydantic model or type (or a JSON Schema) of the body
    media: str = "application/json"
    headers: dict = field(default_factory=dict)  # extra response headers: name → JSON Schema


@dataclass(frozen=True)
class Operation:
    role: str | None
    summary: str
    description: str | None
    tag: str
    responses: dict  # status → Reply
    query: type = None
    body: type = None
    body_optional: bool = False
    form: type = None
    form_missing: dict = None  # field → (code, message) when a required form field is absent
    errors: tuple = ()  # statuses the operation answers beyond the ones its inputs and role imply


def operation(tag, responses, role="segmenter", *, query=None, body=None, body_optional=False, form=None,
              form_missing=None, errors=()):
    """Decorator; `role=None` for a public route. The view's docstring is its summary (first
    line) and description (the rest)."""
    def decorator(view):
        doc = inspect.cleandoc(view.__doc__ or view.__name__)
        summary, _, description = doc.partition("\n")
        contract = Operation(role, summary.strip(), description.strip() or None, tag,
                             {int(status): reply for status, reply in responses.items()},
                             query, body, body_optional, form, form_missing, tuple(errors))

        @functools.wraps(view)
        def parsed(*args, **kwargs):
            if query is not None:
                kwargs["query"] = validation.query(query)
            if body is not None:
                kwargs["body"] = validation.json_body(body, optional=body_optional)
            if form is not None:
                kwargs["form"] = validation.form(form, form_missing)
            return view(*args, **kwargs)

        wrapped = require_role(role)(parsed) if role else parsed
        wrapped.contract = contract
        return wrapped
    return decorator
