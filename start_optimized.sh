#!/usr/bin/env bash
# Set up and serve SegDash under Gunicorn, with the job runner beside it.
# Creates .venv and installs requirements when needed; with no MONGO_URI, starts the
# embedded database (mongod if present, else SecantusDB) with data in ./data/db and
# seeds demo data into it when empty. Then runs Gunicorn and one job runner
# (`flask --app app run-jobs`: sync, auto-create and check jobs). Ctrl-C stops
# everything this script started.
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
  # Last started, first stopped: the job runner (it hands its job back to the queue, which
  # needs the database), then Gunicorn, then the database. Each gets 30 s.
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "SegDash stopped"
}
trap cleanup INT TERM EXIT

embedded=0
if [ -z "${MONGO_URI:-}" ]; then
  embedded=1
  port="${EMBEDDED_DB_PORT:-27017}"
  # In a session of its own, so that Ctrl-C does not reach it: cleanup stops it last, once
  # the job runner has handed its job back.
  detach=""; if command -v setsid >/dev/null; then detach="setsid"; fi
  $detach python embedded_db.py serve --dbpath ./data/db --port "$port" >> data/db.log 2>&1 &
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

# The workers and the job runner share one metrics directory, so /metrics shows the jobs too.
# Gunicorn empties it at start: the runner starts once Gunicorn answers.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/data/metrics}"
gunicorn -c gunicorn_config.py app:app &
gunicorn_pid=$!
pids+=("$gunicorn_pid")
bind="${GUNICORN_BIND:-0.0.0.0:5000}"
python - "http://127.0.0.1:${bind##*:}/healthz" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        break
    except OSError as exc:
        if getattr(exc, "code", None):  # an HTTP answer (503 while the database starts): it is up
            break
        time.sleep(0.2)
PY
flask --app app run-jobs &
pids+=($!)
echo "SegDash on http://${bind} with a job runner — Ctrl-C to stop"
wait "$gunicorn_pid"
