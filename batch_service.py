"""Batches: listing, detail, status/assignee changes and bulk assignment."""
import json

from flask_babel import format_number
from flask_babel import gettext as _

import batch_progress
import db
import history
import mask_records
import policy
import search
from auth import user_by_username
from batch_ids import batch_number, canonical_batch_id
from cache import caches, writes
from errors import bad_request, conflict, enforce, not_found
from pagination import page_envelope
from timeutil import iso, utcnow

LIST_FIELDS = {"_id": 0, "id": 1, "name": 1, "assignee": 1, "status": 1, "mask_count": 1,
               "image_count": 1, "updated_at": 1, "last_rejection.reason": 1}
METADATA_FIELDS = ("created_at", "assigned_at", "started_at", "completed_at", "reviewed_at",
                   "rejected_at")
MAX_BULK_IDS = 5000

# The list's sort keys (`-` prefix: descending): the stored fields each sorts by, the batch
# number last so equal keys keep id order. Each is served by an index (db.INDEXES).
SORT_FIELDS = {"id": [], "name": ["name"], "status": ["status"], "assignee": ["assignee"],
               "updated_at": ["updated_at"], "progress": ["progress"]}
SORTS = tuple(key for name in SORT_FIELDS for key in (name, "-" + name))
DEFAULT_SORT = "id"
# Batches a segmenter still has to work on.
OPEN_STATUSES = ("assigned", "in_progress", "rejected")


def sort_spec(sort):
    """pymongo sort pairs for a sort key such as `name` or `-updated_at`."""
    direction = -1 if sort.startswith("-") else 1
    return [(field, direction) for field in SORT_FIELDS[sort.lstrip("-")] + ["number"]]


def new_batch(batch_id, name=None, image_count=0, source="manual", now=None):
    """A fresh `pending` batch document."""
    now = now or utcnow()
    metadata = {field: None for field in METADATA_FIELDS}
    metadata.update(created_at=now, source=source)
    doc = {"id": batch_id, "number": batch_number(batch_id), "name": name or batch_id,
           "search_keys": search.keys_for(batch_id, name or batch_id), "image_count": image_count, "assignee": None,
           "status": "pending", "mask_count": 0, "metadata": metadata,
           "updated_at": now}
    doc["progress"] = progress(doc)
    return doc


def load_batch(batch_id, projection=None):
    """The batch document with this (canonical) id, or a 404 error: the one lookup of a batch by id."""
    doc = db.batches().find_one({"id": batch_id}, projection)
    if doc is None:
        raise not_found(_("No batch %(id)s.", id=batch_id))
    return doc


progress = batch_progress.percent


def list_item(doc):
    """A batch as the list shows it; a rejected batch also says why (`rejection_reason`)."""
    item = {"id": doc["id"], "name": doc.get("name"), "assignee": doc.get("assignee"),
            "status": doc.get("status"), "mask_count": doc.get("mask_count") or 0,
            "image_count": doc.get("image_count") or 0, "progress": progress(doc),
            "updated_at": iso(doc.get("updated_at"))}
    if doc.get("status") == "rejected":
        item["rejection_reason"] = (doc.get("last_rejection") or {}).get("reason")
    return item


def list_filter(status=None, assignee=None, q=None):
    query = {}
    if status:
        query["status"] = status
    if assignee == "none":
        query["assignee"] = None
    elif assignee:
        query["assignee"] = assignee
    if q:
        # A prefix of the id, of the name or of a word of the name, whatever its case
        # (search.py, served by an index). A batch reference in another spelling ("b7",
        # "Batch-7", "42") also finds that batch itself (its id is one of its keys);
        # "batch_…" stays a plain id prefix.
        exact = canonical_batch_id(q)
        also = [exact] if exact and not q.lower().startswith("batch_") else []
        query.update(search.query(q, also) or {"id": None})
    return query


def _count_key(query):
    return repr(sorted((key, repr(value)) for key, value in query.items()))


def count(query):
    """Number of batches matching `query`, from the TTL cache when fresh."""
    return caches().counts.get_or_compute(
        ("batches", _count_key(query)), lambda: db.batches().count_documents(query))


def list_page(query, paging):
    """One page of list items (exactly per_page documents fetched) and the page's last id.

    A cursor continues after its batch number in id order; other sorts page by number
    (their cursors carry the page, see pagination.PageQuery)."""
    find_query = dict(query)
    if paging.after is not None:
        find_query["number"] = {"$lt" if paging.sort.startswith("-") else "$gt": batch_number(paging.after)}
    cursor = (db.batches().find(find_query, LIST_FIELDS).sort(sort_spec(paging.sort))
              .skip(paging.skip).limit(paging.per_page))
    docs = list(cursor)
    return [list_item(doc) for doc in docs], (docs[-1]["id"] if docs else None)


def list_body(query, paging):
    """The list response as JSON bytes, kept in the per-worker page cache.

    A cached page costs no round trip and no serialization; every write clears the
    cache (cache.py's coherence rule), as it does for the counts. Whether a next page
    exists comes from the total, so no document beyond the page is fetched.
    """
    key = (_count_key(query), paging.per_page, paging.page, paging.after, paging.sort)
    return caches().pages.get_or_compute(key, lambda: _render_list_body(query, paging))


def _render_list_body(query, paging):
    total = count(query)
    items, last_id = list_page(query, paging)
    has_more = len(items) == paging.per_page and paging.page * paging.per_page < total
    envelope = page_envelope(items, total, paging, has_more, last_id)
    return json.dumps(envelope, separators=(",", ":")).encode()


def iter_export_rows(query, sort=DEFAULT_SORT):
    """Batches matching `query` in `sort` order, streamed from the cursor."""
    return db.batches().find(query, LIST_FIELDS, batch_size=1000).sort(sort_spec(sort))


def _version(record):
    return {"id": str(record["file_id"]), "version": record["version"], "filename": record.get("name"),
            "length": record.get("length"), "uploadDate": iso(record.get("uploaded_at")),
            "uploaded_by": record.get("uploaded_by"), "created_at": iso(record.get("created_at"))}


def public_masks(records):
    """The current mask of each name, with its older versions (newest first), ordered by name.

    `records` come by name, then version (mask_records.of_batch).
    """
    by_name = {}
    for record in records:
        by_name.setdefault(record["name_key"], []).append(record)
    masks = []
    for versions in by_name.values():
        current = next((r for r in versions if r.get("current")), None)
        if current is None:
            continue
        older = [_version(r) for r in reversed(versions) if r is not current]
        masks.append({**_version(current), "version_count": len(versions), "older_versions": older})
    masks.sort(key=lambda mask: (mask["filename"] or "").casefold())
    return masks


def _detail(doc, records, changes):
    metadata = doc.get("metadata") or {}
    rejection = doc.get("last_rejection")
    return {
        **list_item(doc),
        "metadata": {**{key: iso(metadata.get(key)) for key in METADATA_FIELDS},
                     "source": metadata.get("source")},
        "masks": public_masks(records),
        "last_rejection": None if not rejection else {
            "reason": rejection.get("reason"), "by": rejection.get("by"), "at": iso(rejection.get("at"))},
        "history": changes,
    }


def _load_detail(batch_id):
    doc = load_batch(batch_id)
    records = mask_records.of_batch(batch_id) if doc.get("mask_count") else []
    return _detail(doc, records, history.for_batch(batch_id))


def get_detail(batch_id):
    """The batch with its masks, from the detail cache when present; 404 when unknown."""
    return caches().details.get_or_compute(("batch", batch_id), lambda: _load_detail(batch_id))


def require_segmenter(username):
    """The active segmenter named `username`, or a 400 error."""
    user = user_by_username(username) if isinstance(username, str) else None
    if user is None or user.get("role") != "segmenter":
        raise bad_request(_("'%(name)s' is not an active segmenter.", name=str(username)[:64]), "invalid_assignee")
    return user


def assignment_sets(assignee, now):
    """$set fields for assigning a batch to `assignee`, or unassigning it (None)."""
    status = policy.status_after_assignment(assignee)
    sets = {"assignee": assignee, "status": status, "updated_at": now}
    if assignee is not None:
        sets[policy.TIMESTAMP_FOR_STATUS[status]] = now
    return sets


@writes
def update(batch_id, changes, user):
    """Apply a PATCH {status?, assignee?, reason?, confirm_incomplete?} by `user` as
    policy.may_update allows, and record it in the batch's history; returns the updated detail."""
    doc = load_batch(batch_id, {"_id": 0, "id": 1, "status": 1, "assignee": 1, "mask_count": 1,
                                "image_count": 1})
    enforce(policy.may_update(user, doc, changes))
    current_status, current_assignee = doc.get("status"), doc.get("assignee")
    now = utcnow()
    sets = {}
    status = current_status
    if policy.assignment_changes(doc, changes):
        if changes["assignee"] is not None:
            require_segmenter(changes["assignee"])
        sets.update(assignment_sets(changes["assignee"], now))
        status = sets["status"]
    target = changes.get("status")
    label = None
    if target is not None and target != status:
        label = policy.transition_label(status, target)
        sets.update(status_sets(label, target, changes.get("reason"), user, now))
    if not sets:
        return get_detail(batch_id)
    sets["updated_at"] = now
    # A conditional update_one, not findAndModify: the embedded server answers findAndModify on
    # batches with a scan of the collection (0.3-0.5 s at 23,480 batches against 10 ms).
    result = db.batches().update_one(
        {"id": batch_id, "status": current_status, "assignee": current_assignee},
        [{"$set": {key: {"$literal": value} for key, value in sets.items()}}, batch_progress.STAGE])
    if result.matched_count == 0:
        raise conflict(_("The batch was changed by someone else meanwhile; reload and retry."),
                       "concurrent_update")
    updated = {"status": sets.get("status", current_status), "assignee": sets.get("assignee", current_assignee)}
    before = {"status": current_status, "assignee": current_assignee}
    history.add([history.record(batch_id, user["username"], history.action_name(updated, label),
                                before, updated, changes.get("reason"), now)])
    return get_detail(batch_id)


def status_sets(label, target, reason, user, now):
    """$set fields for the status change `label` to `target`."""
    sets = {"status": target}
    if label == "reopen_review":
        sets["metadata.reviewed_at"] = None
    else:
        sets[policy.TIMESTAMP_FOR_STATUS[target]] = now
    if label == "reject":
        sets["last_rejection"] = {"reason": reason, "by": user["username"], "at": now}
    return sets


@writes
def bulk_assign(batch_ids, assignee, user, reason=None):
    """(Un)assign many batches with one bulk write; reports what could not be assigned."""
    enforce(policy.may_bulk_assign(user))
    if assignee is not None:
        require_segmenter(assignee)
    found = {doc["id"]: doc for doc in db.batches().find(
        {"id": {"$in": batch_ids}}, {"_id": 0, "id": 1, "status": 1, "assignee": 1})}
    not_found_ids = [batch_id for batch_id in batch_ids if batch_id not in found]
    unchanged = [b for b in batch_ids if b in found and found[b].get("assignee") == assignee]
    not_assignable = [b for b in batch_ids if b in found and b not in unchanged
                      and policy.may_assign(user, found[b]) is not None]
    to_change = [b for b in batch_ids if b in found and b not in unchanged and b not in not_assignable]
    modified = 0
    if to_change:
        now = utcnow()
        sets = assignment_sets(assignee, now)
        result = db.batches().update_many(
            {"id": {"$in": to_change}, "status": {"$in": list(policy.REASSIGNABLE)},
             "assignee": {"$ne": assignee}},
            {"$set": sets})
        modified = result.modified_count
        after = {"status": sets["status"], "assignee": assignee}
        history.add([history.record(b, user["username"], history.action_name(after), found[b], after,
                                    reason, now) for b in to_change])
    return {"assigned": modified, "assignee": assignee, "unchanged": unchanged,
            "not_found": not_found_ids, "not_assignable": not_assignable}


def next_to_review(after=None):
    """The id of the completed batch that has waited longest (oldest completed_at), or None.
    With `after` (a batch id, 404 when unknown): the next one after that batch in this order,
    so that a lead can skip a batch.

    Served by the batches_to_review index (hinted: a planner may otherwise pick
    batches_by_status and sort): the range of completed batches, in the order wanted.
    """
    query = {"status": "completed"}
    if after is not None:
        ref = load_batch(after, {"_id": 0, "number": 1, "metadata.completed_at": 1})
        done_at, number = (ref.get("metadata") or {}).get("completed_at"), ref.get("number")
        if done_at is None:  # null sorts first: later nulls, then every dated one
            query["$or"] = [{"metadata.completed_at": None, "number": {"$gt": number}},
                            {"metadata.completed_at": {"$ne": None}}]
        else:
            query["$or"] = [{"metadata.completed_at": {"$gt": done_at}},
                            {"metadata.completed_at": done_at, "number": {"$gt": number}}]
    doc = db.batches().find_one(query, {"_id": 0, "id": 1},
                                sort=[("metadata.completed_at", 1), ("number", 1)], hint="batches_to_review")
    return doc["id"] if doc else None
def bulk_assign_matching(query, assignee, user, reason=None):
    """`bulk_assign` of every batch matching the list filter `query` (at most MAX_BULK_IDS)."""
    enforce(policy.may_bulk_assign(user))
    ids = [doc["id"] for doc in db.batches().find(query, {"_id": 0, "id": 1}).sort("number", 1)
           .limit(MAX_BULK_IDS + 1)]
    if len(ids) > MAX_BULK_IDS:
        raise bad_request(_("More than %(n)s batches match; narrow the filters.", n=format_number(MAX_BULK_IDS)), "too_many")
    if not ids:
        return {"assigned": 0, "assignee": assignee, "unchanged": [], "not_found": [], "not_assignable": []}
    return bulk_assign(ids, assignee, user, reason)


def summary_for(username):
    """A segmenter's own figures: their batches per status, and masks and images in them.

    One aggregation over their batches (the batches_by_assignee index)."""
    rows = db.batches().aggregate([
        {"$match": {"assignee": username}},
        {"$group": {"_id": "$status", "n": {"$sum": 1},
                    "masks": {"$sum": {"$ifNull": ["$mask_count", 0]}},
                    "images": {"$sum": {"$ifNull": ["$image_count", 0]}}}}])
    by_status = {status: 0 for status in policy.STATUSES}
    masks = images = 0
    for row in rows:
        if row["_id"] in by_status:
            by_status[row["_id"]] = row["n"]
        masks += row["masks"]
        images += row["images"]
    return {"by_status": by_status, "open": sum(by_status[s] for s in OPEN_STATUSES),
            "done": sum(by_status[s] for s in policy.DONE_STATUSES), "masks": masks, "images": images}


def workload():
    """Open batches (assigned, in progress, rejected) per assignee: {username: n}."""
    rows = db.batches().aggregate([
        {"$match": {"status": {"$in": list(OPEN_STATUSES)}, "assignee": {"$ne": None}}},
        {"$group": {"_id": "$assignee", "n": {"$sum": 1}}}])
    return {row["_id"]: row["n"] for row in rows}
