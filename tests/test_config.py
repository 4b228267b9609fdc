"""`.env.example` documents the real defaults: each setting it shows equals config.py's."""
import os
import shlex

from config import load_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def documented_settings():
    """NAME=value lines of .env.example (the file is sourced by a shell: values are shell words)."""
    found = {}
    with open(os.path.join(ROOT, ".env.example"), encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, _, value = line.partition("=")
            words = shlex.split(value)
            found[name] = words[0] if words else ""
    return found


def test_every_documented_default_is_the_code_default(monkeypatch):
    documented = documented_settings()
    for name in documented:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    checked = set()
    for name, value in documented.items():
        if name not in settings:  # Gunicorn's and the start script's settings
            continue
        actual = settings[name]
        if type(actual) is bool:
            expected = value == "1"
        else:
            expected = type(actual)(value) if type(actual) in (int, float) else value
        assert actual == expected, (name, actual, value)
        checked.add(name)
    assert {"JOB_LEASE_SECONDS", "JOB_TIMEOUT_SECONDS", "LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT",
            "COUNT_CACHE_TTL", "AUTO_CREATE_LIMIT"} <= checked
