#!/usr/bin/env bash
# Set up and run the SegDash test suite against a real database server.
# Creates .venv, installs the dev requirements, and runs pytest; the tests start
# their own database server (mongod when on PATH, else SecantusDB) unless
# TEST_MONGO_URI is set. Extra arguments go to pytest.
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

exec python -m pytest "$@"
