"""Database round trips and documents per request, from pymongo command monitoring.

The listener is registered when this module is imported, before any client of
the benchmark process exists, so it sees every command of every client here.
Commands are split as in tests/test_round_trips.py:
- data: commands on `batches`, `masks.files`, `masks.chunks`, `mask_records`,
  `sync_waiting` and the cross-collection `bulkWrite`;
- bookkeeping: `jobs`, `app_state` (job record, lease, cache version) and `hello`;
- other: anything else in the measured database (e.g. a `users` lookup).
getMore counts as a round trip like any other command.
"""
import threading
import time

import bson
from pymongo import monitoring

DATA_COLLECTIONS = {"batches", "masks.files", "masks.chunks", "mask_records", "sync_waiting"}
BOOKKEEPING_COLLECTIONS = {"jobs", "app_state"}
CURSOR_COMMANDS = {"find", "aggregate", "getMore"}
LIST_CAP = 40  # command labels kept per summary (the counts are always complete)


class CommandCounter(monitoring.CommandListener):
    def __init__(self):
        self._lock = threading.Lock()
        self._pending = {}
        self.commands = []
        self.measure_bytes = True

    def started(self, event):
        name = event.command_name
        collection = event.command.get("collection") if name == "getMore" else event.command.get(name)
        record = {"name": name, "db": event.database_name,
                  "collection": collection if isinstance(collection, str) else None,
                  "docs": 0, "reply_bytes": 0, "ms": None, "ok": None}
        with self._lock:
            self._pending[(event.request_id, event.connection_id)] = record
            self.commands.append(record)

    def _finish(self, event, ok, reply=None):
        with self._lock:
            record = self._pending.pop((event.request_id, event.connection_id), None)
        if record is None:
            return
        record["ms"] = event.duration_micros / 1000.0
        record["ok"] = ok
        if reply is not None:
            cursor = reply.get("cursor")
            if record["name"] in CURSOR_COMMANDS and isinstance(cursor, dict):
                record["docs"] = len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])
            if self.measure_bytes:
                try:
                    record["reply_bytes"] = len(bson.encode(reply))
                except Exception:  # an odd reply must not break a measurement
                    record["reply_bytes"] = 0

    def succeeded(self, event):
        self._finish(event, True, event.reply)

    def failed(self, event):
        self._finish(event, False)

    def clear(self):
        with self._lock:
            self.commands = []
            self._pending.clear()

    def snapshot(self):
        with self._lock:
            return list(self.commands)


COUNTER = CommandCounter()
monitoring.register(COUNTER)


def classify(commands, db_name):
    """Summary of commands sent to `db_name` (plus admin `bulkWrite`/`hello`)."""
    out = {"data": [], "bookkeeping": [], "other": [], "docs": 0, "reply_bytes": 0, "commands": []}
    counts = {"data": 0, "bookkeeping": 0, "other": 0}
    for command in commands:
        name, collection = command["name"], command["collection"]
        label = f"{name}:{collection}" if collection else name
        if name == "bulkWrite":
            kind = "data"
        elif name == "hello":
            kind = "bookkeeping"
        elif command["db"] != db_name:
            continue
        elif collection in DATA_COLLECTIONS:
            kind = "data"
        elif collection in BOOKKEEPING_COLLECTIONS:
            kind = "bookkeeping"
        else:
            kind = "other"
        counts[kind] += 1
        if len(out[kind]) < LIST_CAP:
            out[kind].append(label)
        if kind == "data":
            out["docs"] += command["docs"]
            out["reply_bytes"] += command["reply_bytes"]
        if len(out["commands"]) < LIST_CAP:
            out["commands"].append({"kind": kind, "label": label, "docs": command["docs"],
                                    "ms": round(command["ms"], 1) if command["ms"] is not None else None})
    out["n_data"] = counts["data"]
    out["n_bookkeeping"] = counts["bookkeeping"]
    out["n_other"] = counts["other"]
    return out


def measure_call(db_name, function, *args, **kwargs):
    """Run `function` once; returns (its result, command summary, wall seconds)."""
    COUNTER.clear()
    began = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - began
    summary = classify(COUNTER.snapshot(), db_name)
    return result, summary, seconds
