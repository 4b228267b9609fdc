"""The review queue (leads): which completed batch to look at next."""
from flask import Blueprint, jsonify

import batch_service
from api import schemas
from api.contract import Reply, operation
from errors import ApiError

bp = Blueprint("review", __name__, url_prefix="/api")


@bp.get("/review/next")
@operation("batches", {200: Reply("The batch to review next.", schemas.ReviewNext)}, role="lead",
           query=schemas.ReviewQuery)
def review_next(query):
    """The next batch to review (lead)

    The `completed` batch that has waited longest (oldest `metadata.completed_at`, then id).
    After it is approved (`reviewed`) or `rejected`, the next call answers the one after it;
    `after` skips to the batch after a given one. When no batch is waiting: 404
    `nothing_to_review`.
    """
    batch_id = batch_service.next_to_review(query.after)
    if batch_id is None:
        raise ApiError(404, "nothing_to_review", "No completed batch is waiting for review.")
    return jsonify({"batch_id": batch_id})
