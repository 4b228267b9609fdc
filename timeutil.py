"""UTC time: now, and ISO-8601 text for JSON."""
from datetime import datetime, timezone


def utcnow():
    """Now in UTC, truncated to milliseconds as MongoDB stores it."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value):
    """ISO-8601 UTC text (`2026-11-23T12:00:00Z`) for a datetime; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
