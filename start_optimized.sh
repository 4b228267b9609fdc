#!/usr/bin/env bash
# Set up and serve SegDash under Gunicorn.
# Creates .venv and installs requirements when needed; with no MONGO_URI, starts the
# embedded database (mongod if present, else SecantusDB) with data in ./data/db and
# seeds demo data into it when empty. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")"

if [ -f .env ]; then set -a; . ./.env; set +a; fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing requirements"
  .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
  echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# The compiled translation catalogs (.mo) are build products, not kept in git.
pybabel -q compile -d translations

mkdir -p data
if [ -z "${SECRET_KEY:-}" ]; then
  [ -f data/secret_key ] || (umask 077; python -c 'import secrets; print(secrets.token_hex(32))' > data/secret_key)
  SECRET_KEY=$(cat data/secret_key)
  export SECRET_KEY
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "SegDash stopped"
}
trap cleanup INT TERM EXIT

embedded=0
if [ -z "${MONGO_URI:-}" ]; then
  embedded=1
  port="${EMBEDDED_DB_PORT:-27017}"
  python embedded_db.py serve --dbpath ./data/db --port "$port" >> data/db.log 2>&1 &
  pids+=($!)
  export MONGO_URI="mongodb://127.0.0.1:${port}/?directConnection=true"
  echo "Starting the embedded database on port $port (log: data/db.log)"
  python embedded_db.py wait "$MONGO_URI" --timeout 90
fi

flask --app app ensure-indexes
flask --app app migrate
if [ "$embedded" = 1 ] && python -c 'import sys; from app import app
with app.app_context():
    import seed; sys.exit(0 if seed.is_empty() else 1)'; then
  echo "Seeding demo data (first start)"
  flask --app app seed-demo | tee data/demo-logins.txt
  echo "(logins saved in data/demo-logins.txt)"
fi

gunicorn -c gunicorn_config.py app:app &
pids+=($!)
echo "SegDash on http://${GUNICORN_BIND:-0.0.0.0:5000} — Ctrl-C to stop"
wait "${pids[-1]}"
