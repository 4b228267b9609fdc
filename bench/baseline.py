"""The old dashboard's code paths, rebuilt here only to be measured against SegDash.

They reproduce what SPEC's reference problem describes: every list request
loads every batch; sync runs, for each batch, 9 filename patterns × 5 regex
searches on masks.files and writes one update per file found; auto-create
loads every file into memory and inserts batches one at a time; nothing is
cached. They take a pymongo `Database` and share no code with SegDash except
the filename → batch rule used to decide which batch ids auto-create needs
(so both create the same batches).
"""
import csv
import io
import json
import re
import time
from datetime import datetime, timezone

STATUSES = ("pending", "assigned", "in_progress", "completed", "reviewed", "rejected")

# The 9 spellings of batch N the old code searched for, and the 5 places in a
# path it looked for each: at the start, after "/", after "\", after "_" or "-",
# after "." or " ". Case-insensitive; a digit may not follow.
PATTERNS = ("batch_{n:04d}", "batch_{n}", "batch-{n}", "batch.{n:04d}", "batch {n}",
            "b{n:04d}", "b{n}", "b_{n}", "b.{n:05d}")
SEARCHES = ("^{p}", "/{p}", r"\\{p}", "[_-]{p}", "[. ]{p}")
FINDS_PER_BATCH = len(PATTERNS) * len(SEARCHES)


def _json(value):
    return json.dumps(value, default=str, separators=(",", ":"))


def _number(batch_id):
    return int(batch_id.split("_", 1)[1])


# ------------------------------------------------------------------ list


def list_all_then_slice(database, page=1, per_page=50):
    """GET /batches, old style: every batch loaded, sorted in Python, then one page cut out."""
    docs = list(database.batches.find())
    docs.sort(key=lambda doc: doc.get("id") or "")
    start = (page - 1) * per_page
    items = docs[start:start + per_page]
    for doc in items:
        doc["_id"] = str(doc["_id"])
    return _json({"items": items, "total": len(docs), "page": page, "per_page": per_page})


# ------------------------------------------------------------------ metrics and check


def metrics_no_cache(database):
    """Overview figures, old style: every batch loaded and counted in Python, files counted."""
    batches = list(database.batches.find())
    by_status = {status: 0 for status in STATUSES}
    by_assignee = {}
    per_day = {}
    for doc in batches:
        status = doc.get("status") or "pending"
        by_status[status] = by_status.get(status, 0) + 1
        if doc.get("assignee"):
            entry = by_assignee.setdefault(doc["assignee"], {s: 0 for s in STATUSES} | {"masks": 0})
            entry[status] += 1
            entry["masks"] += doc.get("mask_count") or 0
        completed = (doc.get("metadata") or {}).get("completed_at")
        if completed:
            day = completed.strftime("%Y-%m-%d")
            per_day[day] = per_day.get(day, 0) + 1
    files = database["masks.files"].count_documents({})
    linked = database["masks.files"].count_documents({"metadata.linked_at": {"$ne": None}})
    return _json({"totals": {"batches": len(batches), "files": files, "linked_files": linked},
                  "by_status": by_status, "by_assignee": by_assignee, "completed_per_day": per_day})


def check_load_all(database, batch_id_for, limit=100):
    """File audit, old style: every file and every batch loaded into memory."""
    files = list(database["masks.files"].find())
    batches = list(database.batches.find())
    existing = {doc["id"] for doc in batches}
    unmatched, missing, hashes = [], set(), {}
    linked = 0
    for doc in files:
        meta = doc.get("metadata") or {}
        if meta.get("linked_at"):
            linked += 1
        else:
            batch_id = batch_id_for(doc.get("filename"), meta.get("batch_id"))
            if batch_id is None:
                unmatched.append(doc.get("filename"))
            elif batch_id not in existing:
                missing.add(batch_id)
        if meta.get("sha256"):
            hashes.setdefault(meta["sha256"], []).append(doc.get("filename"))
    return _json({"files_total": len(files), "linked": linked, "unlinked": len(files) - linked,
                  "unmatched": unmatched[:limit], "missing_batches": sorted(missing)[:limit],
                  "batches_without_masks": [d["id"] for d in batches if not d.get("mask_count")][:limit],
                  "duplicates": [{"sha256": h, "files": f} for h, f in hashes.items() if len(f) > 1][:limit]})


# ------------------------------------------------------------------ sync


def batch_regexes(number):
    regexes = []
    for pattern in PATTERNS:
        token = re.escape(pattern.format(n=number))
        for search in SEARCHES:
            regexes.append(search.format(p=token) + "([^0-9]|$)")
    return regexes


def sync_loops(database, budget_seconds, start_number=1):
    """Sync, old style, for at most `budget_seconds`, batch by batch in id order.

    For each batch: 45 regex finds on masks.files (9 patterns × 5 searches);
    each file found that is not linked yet gets one update of the file and one
    update of its batch. Stops between two finds when the budget is spent.
    Returns what it did, with the time spent in finds and in updates apart, so
    the full run can be extrapolated from the measured fraction.
    """
    files = database["masks.files"]
    batches = database.batches
    batch_ids = [doc["id"] for doc in batches.find({}, {"_id": 0, "id": 1}).sort("id", 1)]
    batch_ids = [b for b in batch_ids if _number(b) >= start_number]
    began = time.perf_counter()
    stats = {"batches_total": len(batch_ids), "batches_done": 0, "finds": 0, "find_seconds": 0.0,
             "files_linked": 0, "updates": 0, "update_seconds": 0.0, "complete": False,
             "links": {}, "completed_batches": []}
    linked_now = set()
    for batch_id in batch_ids:
        for regex in batch_regexes(_number(batch_id)):
            if time.perf_counter() - began > budget_seconds:
                stats["elapsed"] = time.perf_counter() - began
                return stats
            t0 = time.perf_counter()
            found = list(files.find({"filename": {"$regex": regex, "$options": "i"}}))
            t1 = time.perf_counter()
            stats["finds"] += 1
            stats["find_seconds"] += t1 - t0
            for doc in found:
                if doc["_id"] in linked_now or (doc.get("metadata") or {}).get("linked_at"):
                    continue
                link_one(database, doc["_id"], batch_id)
                linked_now.add(doc["_id"])
                stats["links"].setdefault(batch_id, []).append(doc["_id"])
                stats["files_linked"] += 1
                stats["updates"] += 2
            stats["update_seconds"] += time.perf_counter() - t1
        stats["batches_done"] += 1
        stats["completed_batches"].append(batch_id)
    stats["complete"] = True
    stats["elapsed"] = time.perf_counter() - began
    return stats


def link_one(database, file_id, batch_id):
    """The old per-file write: one update of the file, one update of its batch."""
    now = datetime.now(timezone.utc)
    database["masks.files"].update_one({"_id": file_id},
                                       {"$set": {"metadata.batch_id": batch_id, "metadata.linked_at": now}})
    database.batches.update_one({"id": batch_id}, {"$push": {"mask_files": file_id}, "$inc": {"mask_count": 1}})


# ------------------------------------------------------------------ auto-create


def auto_create_one_by_one(database, batch_id_for, limit=10_000):
    """Auto-create, old style: every file loaded into memory, then one insert per missing batch."""
    files = list(database["masks.files"].find())
    existing = {doc["id"] for doc in database.batches.find({}, {"_id": 0, "id": 1})}
    wanted = {}
    for doc in files:
        meta = doc.get("metadata") or {}
        if meta.get("linked_at"):
            continue
        batch_id = batch_id_for(doc.get("filename"), meta.get("batch_id"))
        if batch_id and batch_id not in existing:
            wanted[batch_id] = wanted.get(batch_id, 0) + 1
    created = 0
    now = datetime.now(timezone.utc)
    for batch_id in sorted(wanted)[:limit]:
        database.batches.insert_one({
            "id": batch_id, "name": batch_id, "image_count": wanted[batch_id], "assignee": None,
            "status": "pending", "mask_files": [], "mask_count": 0,
            "metadata": {"created_at": now, "source": "auto-create"}, "updated_at": now})
        created += 1
    return {"created": created, "files_loaded": len(files)}


# ------------------------------------------------------------------ export


def export_load_all(database):
    """CSV export, old style: every row loaded, the whole file built in memory, then sent."""
    docs = list(database.batches.find())
    docs.sort(key=lambda doc: doc.get("id") or "")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = ("id", "name", "assignee", "status", "mask_count", "image_count", "updated_at")
    writer.writerow(columns)
    for doc in docs:
        writer.writerow([doc.get(column) for column in columns])
    return buffer.getvalue()


# ------------------------------------------------------------------ what the old sync would link


_DIGITS = re.compile(r"[0-9]+")


def union_regex(number):
    """One regex matching exactly the files that at least one of batch `number`'s 45 finds matches."""
    spellings = "|".join(re.escape(pattern.format(n=number)) for pattern in PATTERNS)
    return re.compile(r"(?:^|[/\\_\-. ])(?:" + spellings + r")(?:[^0-9]|$)", re.IGNORECASE)


def simulate_links(files, existing_ids):
    """file id -> batch id that the old sync would link it to, computed in Python.

    The old loop visits batches in id order and links a file to the first batch
    one of whose 45 regexes matches it; a batch number can only match a file
    whose name contains its digits, so only those batches are tried.
    """
    compiled = {}
    out = {}
    for file_id, filename in files:
        if not isinstance(filename, str):
            continue
        candidates = []
        for digits in set(_DIGITS.findall(filename)):
            number = int(digits)
            if number <= 0 or len(str(number)) > 12:
                continue
            batch_id = f"batch_{number:04d}"
            if batch_id in existing_ids:
                candidates.append((batch_id, number))
        for batch_id, number in sorted(candidates):
            regex = compiled.get(number)
            if regex is None:
                regex = compiled[number] = union_regex(number)
            if regex.search(filename):
                out[file_id] = batch_id
                break
    return out
