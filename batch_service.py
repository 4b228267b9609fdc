"""Batches: listing, detail, status/assignee changes and bulk assignment."""
import json

from flask_babel import gettext as _
from pymongo import ReturnDocument

import db
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
               "image_count": 1, "updated_at": 1}
METADATA_FIELDS = ("created_at", "assigned_at", "started_at", "completed_at", "reviewed_at",
                   "rejected_at")
MAX_BULK_IDS = 5000


def new_batch(batch_id, name=None, image_count=0, source="manual", now=None):
    """A fresh `pending` batch document."""
    now = now or utcnow()
    metadata = {field: None for field in METADATA_FIELDS}
    metadata.update(created_at=now, source=source)
    return {"id": batch_id, "number": batch_number(batch_id), "name": name or batch_id,
            "search_keys": search.keys_for(batch_id, name or batch_id), "image_count": image_count, "assignee": None,
            "status": "pending", "mask_count": 0, "metadata": metadata,
            "updated_at": now}


def load_batch(batch_id, projection=None):
    """The batch document with this (canonical) id, or a 404 error: the one lookup of a batch by id."""
    doc = db.batches().find_one({"id": batch_id}, projection)
    if doc is None:
        raise not_found(_("No batch %(id)s.", id=batch_id))
    return doc


def progress(doc):
    """Percent of the batch's images that have a mask (0-100): min(mask_count, image_count) / image_count.

    `mask_count` counts current mask versions only (mask_records.py), so a re-upload never pushes it up.
    """
    images = doc.get("image_count") or 0
    masks = doc.get("mask_count") or 0
    if images <= 0:
        return 100.0 if masks and doc.get("status") in policy.DONE_STATUSES else 0.0
    return round(100.0 * min(masks, images) / images, 1)


def list_item(doc):
    return {"id": doc["id"], "name": doc.get("name"), "assignee": doc.get("assignee"),
            "status": doc.get("status"), "mask_count": doc.get("mask_count") or 0,
            "image_count": doc.get("image_count") or 0, "progress": progress(doc),
            "updated_at": iso(doc.get("updated_at"))}


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
    """One page of list items (exactly per_page documents fetched) and the page's last id."""
    find_query = dict(query)
    if paging.after is not None:
        find_query["number"] = {"$gt": batch_number(paging.after)}
    cursor = (db.batches().find(find_query, LIST_FIELDS).sort("number", 1)
              .skip(paging.skip).limit(paging.per_page))
    docs = list(cursor)
    return [list_item(doc) for doc in docs], (docs[-1]["id"] if docs else None)


def list_body(query, paging):
    """The list response as JSON bytes, kept in the per-worker page cache.

    A cached page costs no round trip and no serialization; every write clears the
    cache (cache.py's coherence rule), as it does for the counts. Whether a next page
    exists comes from the total, so no document beyond the page is fetched.
    """
    key = (_count_key(query), paging.per_page, paging.page, paging.after)
    return caches().pages.get_or_compute(key, lambda: _render_list_body(query, paging))


def _render_list_body(query, paging):
    total = count(query)
    items, last_id = list_page(query, paging)
    has_more = len(items) == paging.per_page and paging.page * paging.per_page < total
    envelope = page_envelope(items, total, paging, has_more, last_id)
    return json.dumps(envelope, separators=(",", ":")).encode()


def iter_export_rows(query):
    """Batches matching `query` in id order, streamed from the cursor."""
    return db.batches().find(query, LIST_FIELDS, batch_size=1000).sort("number", 1)


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


def _detail(doc, records):
    metadata = doc.get("metadata") or {}
    return {
        **list_item(doc),
        "metadata": {**{key: iso(metadata.get(key)) for key in METADATA_FIELDS},
                     "source": metadata.get("source")},
        "masks": public_masks(records),
    }


def _load_detail(batch_id):
    doc = load_batch(batch_id)
    records = mask_records.of_batch(batch_id) if doc.get("mask_count") else []
    return _detail(doc, records)


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
    """Apply a PATCH {status?, assignee?} by `user` as policy.may_update allows; returns the updated detail."""
    doc = load_batch(batch_id, {"_id": 0, "id": 1, "status": 1, "assignee": 1})
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
    if target is not None and target != status:
        sets["status"] = target
        sets[policy.TIMESTAMP_FOR_STATUS[target]] = now
    if not sets:
        return get_detail(batch_id)
    sets["updated_at"] = now
    updated = db.batches().find_one_and_update(
        {"id": batch_id, "status": current_status, "assignee": current_assignee},
        {"$set": sets}, projection={"_id": 1}, return_document=ReturnDocument.AFTER)
    if updated is None:
        raise conflict(_("The batch was changed by someone else meanwhile; reload and retry."),
                       "concurrent_update")
    return get_detail(batch_id)


@writes
def bulk_assign(batch_ids, assignee, user):
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
        result = db.batches().update_many(
            {"id": {"$in": to_change}, "status": {"$in": list(policy.REASSIGNABLE)},
             "assignee": {"$ne": assignee}},
            {"$set": assignment_sets(assignee, utcnow())})
        modified = result.modified_count
    return {"assigned": modified, "assignee": assignee, "unchanged": unchanged,
            "not_found": not_found_ids, "not_assignable": not_assignable}
