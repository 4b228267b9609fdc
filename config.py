"""Application settings, read once from the environment.

Every variable is documented in `.env.example`. Nothing else in the code reads
`os.environ` for application settings, so this module is the one place to look.
"""
import os
import secrets


def env_str(name, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name, default):
    value = env_str(name)
    return int(value) if value is not None else default


def env_float(name, default):
    value = env_str(name)
    return float(value) if value is not None else default


def load_settings():
    """Flask config keys built from the environment."""
    secret = env_str("SECRET_KEY")
    return {
        "MONGO_URI": env_str("MONGO_URI", "mongodb://127.0.0.1:27017/"),
        "MONGO_DB": env_str("MONGO_DB", "segdash"),
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": env_int("MONGO_SERVER_SELECTION_TIMEOUT_MS", 2000),
        "MONGO_SOCKET_TIMEOUT_MS": env_int("MONGO_SOCKET_TIMEOUT_MS", 60000),
        "MONGO_MAX_POOL_SIZE": env_int("MONGO_MAX_POOL_SIZE", 20),
        # Without SECRET_KEY each process would invent its own key and sessions
        # would break across workers; start_optimized.sh always exports one.
        "SECRET_KEY": secret or secrets.token_hex(32),
        "SECRET_KEY_IS_EPHEMERAL": secret is None,
        "MAX_CONTENT_LENGTH": env_int("MAX_UPLOAD_MB", 50) * 1024 * 1024,
        "COUNT_CACHE_TTL": env_float("COUNT_CACHE_TTL", 30.0),
        "METRICS_CACHE_TTL": env_float("METRICS_CACHE_TTL", 30.0),
        # Under constant writes the team figures are recomputed at most this often (cluster-wide).
        "TEAM_METRICS_MIN_SECONDS": env_float("TEAM_METRICS_MIN_SECONDS", 1.0),
        "DETAIL_CACHE_SIZE": env_int("DETAIL_CACHE_SIZE", 512),
        "DETAIL_CACHE_TTL": env_float("DETAIL_CACHE_TTL", 60.0),
        "USER_CACHE_TTL": env_float("USER_CACHE_TTL", 60.0),
        "CACHE_VERSION_CHECK_SECONDS": env_float("CACHE_VERSION_CHECK_SECONDS", 1.0),
        "EXTRA_BATCH_PATTERNS": env_str("EXTRA_BATCH_PATTERNS", ""),
        # Background jobs (jobs.py, jobrunner.py). A running job renews its lease every third of
        # JOB_LEASE_SECONDS; a job whose runner died is resumed by a runner once the lease runs
        # out. JOB_TIMEOUT_SECONDS bounds one step (chunk) of a job; JOB_RETRY_SECONDS is how long
        # a job waits for the database without progress before it fails.
        "JOB_LEASE_SECONDS": env_int("JOB_LEASE_SECONDS", 60),
        "JOB_TIMEOUT_SECONDS": env_int("JOB_TIMEOUT_SECONDS", 600),
        "JOB_POLL_SECONDS": env_float("JOB_POLL_SECONDS", 0.5),
        "JOB_RETRY_SECONDS": env_int("JOB_RETRY_SECONDS", 120),
        "SYNC_CHUNK_SIZE": env_int("SYNC_CHUNK_SIZE", 2000),
        "AUTO_CREATE_LIMIT": env_int("AUTO_CREATE_LIMIT", 10000),
        # Sync rescans the files uploaded up to this long before the previous sync began
        # (uploads are dated by the clock of the host that received them).
        "SYNC_OVERLAP_SECONDS": env_int("SYNC_OVERLAP_SECONDS", 600),
        # Mask previews (mask_preview.py): larger files or images are refused, not decoded.
        "PREVIEW_MAX_BYTES": env_int("PREVIEW_MAX_MB", 50) * 1024 * 1024,
        "PREVIEW_MAX_PIXELS": env_int("PREVIEW_MAX_PIXELS", 40_000_000),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # "1": always Secure; "0": never; "auto": when the request came over HTTPS (security.py).
        "SESSION_COOKIE_SECURE": env_str("SESSION_COOKIE_SECURE", "auto") == "1",
        "SESSION_COOKIE_SECURE_AUTO": env_str("SESSION_COOKIE_SECURE", "auto") == "auto",
        # Reverse proxies in front of Gunicorn whose X-Forwarded-* headers are believed.
        "TRUSTED_PROXY_HOPS": env_int("TRUSTED_PROXY_HOPS", 0),
        # Idle lifetime (the signed cookie's age since its last refresh) and absolute
        # lifetime (since the login, recorded on the server: server_sessions.py).
        "PERMANENT_SESSION_LIFETIME": env_int("SESSION_HOURS", 12) * 3600,
        "SESSION_ABSOLUTE_HOURS": env_float("SESSION_ABSOLUTE_HOURS", 24.0),
        # Werkzeug method for new password hashes; the tests choose a cheap one.
        "PASSWORD_HASH_METHOD": env_str("PASSWORD_HASH_METHOD", "scrypt"),
        # Failed logins allowed per (username, address), per address and per username
        # (rate_limit.py), counted in the database across all workers and hosts.
        "LOGIN_RATE_LIMIT": env_str("LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "LOGIN_IP_RATE_LIMIT": env_str("LOGIN_IP_RATE_LIMIT", "50 per 5 minutes"),
        "LOGIN_USER_RATE_LIMIT": env_str("LOGIN_USER_RATE_LIMIT", "50 per 15 minutes;200 per day"),
        # Searches, CSV exports and checks per user and worker (request_limits.py).
        "EXPENSIVE_RATE_LIMIT": env_str("EXPENSIVE_RATE_LIMIT", "120 per minute"),
        # CSRF is checked in auth.py only for cookie-authenticated writes.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "LOG_LEVEL": env_str("LOG_LEVEL", "INFO"),
        # Language when neither the user's choice nor the browser's Accept-Language names
        # one of the translated languages (i18n.py), and for the CLI's messages.
        "DEFAULT_LOCALE": env_str("DEFAULT_LOCALE", "en"),
        "MEMORY_SAMPLE_RATE": env_float("MEMORY_SAMPLE_RATE", 0.01),
        "MEMORY_WARN_MB": env_int("MEMORY_WARN_MB", 1500),
    }
