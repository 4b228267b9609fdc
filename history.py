"""Batch history: one record per status or assignee change, `{batch_id, at, actor, action,
from, to, reason}`, in the `batch_history` collection.

Records are inserted, never updated: a change costs one small insert (a bulk assignment
of N batches one insert_many of N records) instead of growing an array on each batch.
`from` and `to` are `{status, assignee}` before and after the change; `action` is the
status change's label (policy.TRANSITIONS: start, complete, review, reject, restart,
reopen, reopen_review) or, for an assignment alone, `assign` / `unassign`.
Read newest first through the `history_by_batch` index, at most LIMIT records.
"""
import db
from timeutil import iso

LIMIT = 50


def action_name(after, label=None):
    """`label` when the status change has one, else what the assignment did (`after` is the new state)."""
    if label:
        return label
    return "assign" if after.get("assignee") else "unassign"


def record(batch_id, actor, action, before, after, reason=None, at=None):
    """One history document (not yet stored)."""
    return {"batch_id": batch_id, "at": at, "actor": actor, "action": action,
            "from": {"status": before.get("status"), "assignee": before.get("assignee")},
            "to": {"status": after.get("status"), "assignee": after.get("assignee")},
            "reason": reason}


def add(records):
    """Store history records (one write whatever their number). Called inside a `@writes` function."""
    if records:
        db.batch_history().insert_many(records, ordered=False)


def public(doc):
    return {"at": iso(doc.get("at")), "actor": doc.get("actor"), "action": doc.get("action"),
            "from": doc.get("from"), "to": doc.get("to"), "reason": doc.get("reason")}


def for_batch(batch_id, limit=LIMIT):
    """The batch's latest changes, newest first."""
    cursor = (db.batch_history().find({"batch_id": batch_id}, {"_id": 0})
              .sort([("at", -1), ("_id", -1)]).limit(limit))
    return [public(doc) for doc in cursor]
