#!/usr/bin/env bash
# Set up and run the SegDash test suite against a real database server.
# Creates .venv, installs the dev requirements, and runs pytest; the tests start
# their own database server (mongod when on PATH, else SecantusDB) unless
# TEST_MONGO_URI is set. The browser tests need Debian's chromium (/usr/bin/chromium),
# installed here with apt-get when missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-dev.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# The compiled translation catalogs (.mo) are build products, not kept in git.
pybabel -q compile -d translations

# The browser tests (tests/test_ui.py) drive Debian's Chromium; install it when missing.
# Playwright's own browser download is not used.
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

exec python -m pytest "$@"
