"""`gunicorn bench.proposed_app:app`: SegDash with the list page cached (see bench/proposed.py)."""
from bench import proposed

proposed.install()

from app import create_app  # noqa: E402

app = create_app()
