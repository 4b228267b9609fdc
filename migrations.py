"""`flask --app app migrate`: bring stored data up to what this version of the code reads.

Idempotent (a second run changes nothing) and reports what it changed. Run by
start_optimized.sh at every start, after ensure-indexes.

- batches without `search_keys` (stored before search used them) get them (search.py);
- the index the old name search used (`batches_by_name`) is dropped.
"""
import click
from flask.cli import with_appcontext
from pymongo import UpdateOne

import db
import search
from cache import writes

CHUNK = 1000
OBSOLETE_INDEXES = {"batches": ["batches_by_name"]}


def add_search_keys():
    """Give every batch without `search_keys` its keys; returns how many were updated."""
    updated = 0
    pending = []
    cursor = db.batches().find({"search_keys": {"$exists": False}}, {"_id": 1, "id": 1, "name": 1},
                               batch_size=CHUNK)
    for doc in cursor:
        keys = search.keys_for(doc["id"], doc.get("name") or doc["id"])
        pending.append(UpdateOne({"_id": doc["_id"], "search_keys": {"$exists": False}},
                                 {"$set": {"search_keys": keys}}))
        if len(pending) >= CHUNK:
            updated += db.batches().bulk_write(pending, ordered=False).modified_count
            pending = []
    if pending:
        updated += db.batches().bulk_write(pending, ordered=False).modified_count
    return updated


def drop_obsolete_indexes():
    dropped = []
    for collection, names in OBSOLETE_INDEXES.items():
        present = set(db.database()[collection].index_information())
        for name in names:
            if name in present:
                db.database()[collection].drop_index(name)
                dropped.append(f"{collection}.{name}")
    return dropped


@writes
def migrate():
    """Run every step; returns {step: what it changed}."""
    return {"batches given search keys": add_search_keys(),
            "obsolete indexes dropped": drop_obsolete_indexes()}


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Bring stored data up to date with this version (idempotent; says what it changed)."""
    for step, changed in migrate().items():
        shown = ", ".join(changed) if isinstance(changed, list) else changed
        click.echo(f"{step}: {shown or 0}")
