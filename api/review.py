"""The review queue (leads): which completed batch to look at next."""
from flask import Blueprint, jsonify
from flask_babel import gettext as _

import batch_service
from api import schemas
from api.contract import Reply, operation
from batch_ids import canonical_batch_id
from errors import ApiError, not_found

bp = Blueprint("review", __name__, url_prefix="/api")


@bp.get("/review/next")
@operation("batches", {200: Reply("The batch to review next.", schemas.ReviewNext)}, role="lead",
           query=schemas.ReviewQuery, errors=(404,))
def review_next(query):
    """The next batch to review (lead)

    The `completed` batch that has waited longest (oldest `metadata.completed_at`, then id).
    After it is approved (`reviewed`) or `rejected`, the next call answers the one after it;
    `after` skips to the batch after a given one. When no batch is waiting: 404
    `nothing_to_review`.
    """
    after = None
    if query.after is not None:
        after = canonical_batch_id(query.after)
        if after is None:
            raise not_found(_("No batch %(id)s.", id=query.after[:40]))
    batch_id = batch_service.next_to_review(after)
    if batch_id is None:
        raise ApiError(404, "nothing_to_review", _("No completed batch is waiting for review."))
    return jsonify({"batch_id": batch_id})
