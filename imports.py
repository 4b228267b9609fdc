"""Checking import files (`import-users`, `import-batches`) record by record.

The rules are the ones the API and `create-user` apply (auth.check_user_fields,
validation.plain_string, workflow, batch_ids); every record is checked before anything
is written, so a file with one bad record imports nothing. Each problem names the
record (its index in the file) and the field.
"""
import auth
import db
import policy
from batch_ids import canonical_batch_id
from errors import ApiError
from validation import plain_string

USER_FIELDS = {"username", "role", "display_name", "password"}
BATCH_FIELDS = {"id", "name", "image_count", "assignee", "status"}
MAX_IMAGE_COUNT = 10_000_000
MAX_REPORTED = 50


class ImportProblems(Exception):
    """Every problem of a file: a list of `record N, field 'f': what is wrong` lines."""

    def __init__(self, problems):
        super().__init__("; ".join(problems[:MAX_REPORTED]))
        self.problems = problems


def _problem(index, field, message):
    return f"record {index}, field '{field}': {message}" if field else f"record {index}: {message}"


def _records(data, allowed, key_field):
    """Yields (index, record) for the objects of `data`; collects shape problems."""
    problems = []
    good = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            problems.append(_problem(index, None, "not an object"))
            continue
        unknown = sorted(str(k)[:40] for k in record if k not in allowed)
        if unknown:
            problems.append(_problem(index, unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})"))
            continue
        if key_field not in record:
            problems.append(_problem(index, key_field, "missing"))
            continue
        good.append((index, record))
    return good, problems


def _string(index, record, field, problems):
    try:
        return plain_string(record[field], field)
    except ApiError as exc:
        problems.append(_problem(index, field, exc.message))
        return None


def check_users(data):
    """Clean user records [{username, role, display_name?, password?}] or ImportProblems."""
    good, problems = _records(data, USER_FIELDS, "username")
    clean, first_seen = [], {}
    for index, record in good:
        try:
            auth.check_user_fields(record.get("username"), record.get("role"), record.get("password"),
                                   record.get("display_name"))
        except auth.InvalidUser as exc:
            problems.append(_problem(index, exc.field, str(exc)))
            continue
        if record["username"] in first_seen:
            problems.append(_problem(index, "username", f"also in record {first_seen[record['username']]}"))
            continue
        first_seen[record["username"]] = index
        clean.append(record)
    if problems:
        raise ImportProblems(problems)
    return clean


def _check_batch(index, record, problems):
    batch_id = canonical_batch_id(record["id"]) if isinstance(record["id"], str) else None
    if batch_id is None:
        problems.append(_problem(index, "id", f"{str(record['id'])[:40]!r} is not a batch id"))
        return None
    clean = {"id": batch_id}
    if "name" in record:
        clean["name"] = _string(index, record, "name", problems)
    if "image_count" in record:
        count = record["image_count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_IMAGE_COUNT:
            problems.append(_problem(index, "image_count", f"must be a whole number from 0 to {MAX_IMAGE_COUNT}"))
        clean["image_count"] = count
    if "status" in record:
        if record["status"] not in policy.STATUSES:
            problems.append(_problem(index, "status", f"must be one of {', '.join(policy.STATUSES)}"))
        clean["status"] = record["status"]
    if "assignee" in record:
        if record["assignee"] is not None and not auth.valid_username(record["assignee"]):
            problems.append(_problem(index, "assignee", "must be a username or null"))
        clean["assignee"] = record["assignee"]
    return clean


def check_batches(data):
    """Clean batch records [{id, name?, image_count?, status?, assignee?}] or ImportProblems.

    As through the API: an assignee is an active segmenter, a pending batch has no
    assignee and any other status has one (a field the record leaves out keeps the
    stored batch's value, or a new batch's: pending, nobody).
    """
    good, problems = _records(data, BATCH_FIELDS, "id")
    checked, first_seen = [], {}
    for index, record in good:
        before = len(problems)
        clean = _check_batch(index, record, problems)
        if clean is None or len(problems) > before:
            continue
        if clean["id"] in first_seen:
            problems.append(_problem(index, "id", f"{clean['id']} is also in record {first_seen[clean['id']]}"))
            continue
        first_seen[clean["id"]] = index
        checked.append((index, clean))
    _check_assignments(checked, problems)
    if problems:
        raise ImportProblems(problems)
    return [clean for _index, clean in checked]


def _check_assignments(checked, problems):
    named = {clean["assignee"] for _i, clean in checked if clean.get("assignee")}
    segmenters = {doc["username"] for doc in db.users().find(
        {"username": {"$in": sorted(named)}, "role": "segmenter", "active": True}, {"username": 1})}
    partial = [clean["id"] for _i, clean in checked if ("status" in clean) != ("assignee" in clean)]
    stored = {doc["id"]: doc for doc in db.batches().find(
        {"id": {"$in": partial}}, {"_id": 0, "id": 1, "status": 1, "assignee": 1})} if partial else {}
    for index, clean in checked:
        if clean.get("assignee") and clean["assignee"] not in segmenters:
            problems.append(_problem(index, "assignee", f"{clean['assignee']!r} is not an active segmenter"))
            continue
        if "status" not in clean and "assignee" not in clean:
            continue
        current = stored.get(clean["id"], {"status": "pending", "assignee": None})
        status = clean.get("status", current.get("status"))
        assignee = clean.get("assignee", current.get("assignee"))
        if (status == "pending") != (assignee is None):
            field = "status" if "status" in clean else "assignee"
            problems.append(_problem(index, field, "a pending batch has no assignee, and a batch in any "
                                     f"other status has one (here: {status}, assignee {assignee!r})"))
