"""The embedded database: a local MongoDB-compatible server for the demo and the tests.

Uses `mongod` when it is on PATH, otherwise SecantusDB's `secantusd-py` (the
MongoDB wire protocol over WiredTiger, installed from PyPI with the requirements),
started `--standalone`: SegDash uses neither change streams nor transactions, so it
needs no replica-set topology.

    python embedded_db.py serve --dbpath ./data/db --port 27017   # runs until stopped
    python embedded_db.py wait mongodb://127.0.0.1:27017/          # waits until it answers
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def server_command(dbpath, port, host="127.0.0.1"):
    """The command line that serves `dbpath` on host:port, and the server's name."""
    mongod = shutil.which("mongod")
    if mongod:
        return [mongod, "--dbpath", dbpath, "--port", str(port), "--bind_ip", host, "--quiet"], "mongod"
    secantus = shutil.which("secantusd-py") or os.path.join(os.path.dirname(sys.executable), "secantusd-py")
    if not os.path.exists(secantus):
        raise RuntimeError("neither mongod nor secantusd-py found; install requirements.txt")
    return [secantus, "--host", host, "--port", str(port), "--storage-path", dbpath,
            "--log-level", "WARNING", "--standalone"], "secantusdb"


def uri_for(port, host="127.0.0.1"):
    return f"mongodb://{host}:{port}/?directConnection=true"


def wait_ready(uri, timeout=60.0, process=None):
    """Block until the server at `uri` answers ping; raise when it does not in time."""
    deadline = time.monotonic() + timeout
    client = MongoClient(uri, serverSelectionTimeoutMS=500)
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"database server exited with code {process.returncode}")
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.2)
    finally:
        client.close()
    raise RuntimeError(f"database at {uri} did not answer within {timeout:.0f}s")


def start(dbpath, port, log_path=None):
    """Start the server in the background; returns (Popen, uri, name) once it answers."""
    os.makedirs(dbpath, exist_ok=True)
    command, name = server_command(dbpath, port)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = uri_for(port)
    try:
        wait_ready(uri, process=process)
    except Exception:
        stop(process)
        raise
    return process, uri, name


def stop(process, timeout=15):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server in the foreground until stopped")
    serve.add_argument("--dbpath", default="./data/db")
    serve.add_argument("--port", type=int, default=27017)
    wait = sub.add_parser("wait", help="wait until the server at URI answers")
    wait.add_argument("uri")
    wait.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.command == "wait":
        wait_ready(args.uri, args.timeout)
        return 0
    os.makedirs(args.dbpath, exist_ok=True)
    command, name = server_command(args.dbpath, args.port)
    print(f"embedded database: {name} on 127.0.0.1:{args.port}, data in {args.dbpath}", flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
