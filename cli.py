"""Command-line tasks: `flask --app app <command>`."""
import getpass
import json
import os
import sys

import click
from flask.cli import with_appcontext
from pymongo import UpdateOne

import auth
import db
import jobs
import seed
import workflow
from batch_ids import canonical_batch_id
from batch_service import new_batch
from cache import record_write
from timeutil import utcnow

IMPORT_CHUNK = 1000
BATCH_IMPORT_FIELDS = {"id", "name", "image_count", "assignee", "status"}


def _load_json_list(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, list):
        raise click.ClickException(f"{path} must hold a JSON list of objects")
    return data


def validate_batch_record(record):
    """A clean batch record from an import file, or a ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("not an object")
    unknown = set(record) - BATCH_IMPORT_FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    batch_id = canonical_batch_id(record.get("id"))
    if batch_id is None:
        raise ValueError(f"id {record.get('id')!r} is not a batch id")
    clean = {"id": batch_id}
    if "name" in record:
        if not isinstance(record["name"], str) or not record["name"].strip() or len(record["name"]) > 200:
            raise ValueError("name must be a non-empty string of at most 200 characters")
        clean["name"] = record["name"]
    if "image_count" in record:
        count = record["image_count"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("image_count must be a whole number >= 0")
        clean["image_count"] = count
    if "status" in record:
        if record["status"] not in workflow.STATUSES:
            raise ValueError(f"status must be one of {', '.join(workflow.STATUSES)}")
        clean["status"] = record["status"]
    if "assignee" in record:
        if record["assignee"] is not None and not auth.valid_username(record["assignee"]):
            raise ValueError("assignee must be a username or null")
        clean["assignee"] = record["assignee"]
    return clean


def _batch_upsert(record, now):
    defaults = new_batch(record["id"], source="import", now=now)
    fields = {k: v for k, v in record.items() if k != "id"}
    on_insert = {k: v for k, v in defaults.items() if k not in fields and k != "updated_at"}
    return UpdateOne({"id": record["id"]},
                     {"$set": {**fields, "updated_at": now}, "$setOnInsert": on_insert}, upsert=True)


@click.command("import-batches")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_batches(path):
    """Upsert the batches of a JSON file (a list of objects with at least `id`).

    Recorded as an `import` job run by this process (progress on the Jobs page too).
    """
    records, problems = [], []
    for index, raw in enumerate(_load_json_list(path)):
        try:
            records.append(validate_batch_record(raw))
        except ValueError as exc:
            problems.append(f"record {index}: {exc}")
    if problems:
        raise click.ClickException("nothing imported; fix these first:\n  " + "\n  ".join(problems[:50]))
    job = jobs.start_here("import", f"cli:{getpass.getuser()}", total=len(records), unit="batches",
                          params={"file": os.path.basename(path)})
    counts = {"imported": 0, "inserted": 0, "updated": 0}
    try:
        with jobs.keep_lease(job), \
                click.progressbar(length=len(records), label="Importing batches", file=sys.stderr) as bar:
            now = utcnow()
            for start in range(0, len(records), IMPORT_CHUNK):
                chunk = records[start:start + IMPORT_CHUNK]
                result = db.batches().bulk_write([_batch_upsert(r, now) for r in chunk], ordered=False)
                counts["inserted"] += result.upserted_count
                counts["updated"] += result.matched_count
                counts["imported"] += len(chunk)
                record_write()
                jobs.checkpoint(job, counts["imported"], len(records), "batches")
                bar.update(len(chunk))
    except jobs.Cancelled:
        jobs.cancelled(job, counts)
        raise click.ClickException(f"cancelled from the Jobs page after {counts['imported']} batches") from None
    except Exception as exc:
        jobs.fail(job, exc.__class__.__name__, counts)
        raise
    jobs.finish(job, counts)
    click.echo(f"{len(records)} batches: {counts['inserted']} new, {counts['updated']} already present (updated)")


@click.command("import-users")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_users(path):
    """Upsert the users of a JSON file: [{username, role, display_name?, password?}]."""
    users = _load_json_list(path)
    problems = []
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not auth.valid_username(user.get("username")) \
                or user.get("role") not in auth.ROLES:
            problems.append(f"record {index}: needs a valid username and a role in {auth.ROLES}")
        elif set(user) - {"username", "role", "display_name", "password"}:
            problems.append(f"record {index}: unknown fields")
    if problems:
        raise click.ClickException("nothing imported; fix these first:\n  " + "\n  ".join(problems[:50]))
    with click.progressbar(users, label="Importing users", file=sys.stderr) as bar:
        for user in bar:
            auth.create_user(user["username"], user["role"], password=user.get("password"),
                             display_name=user.get("display_name"))
    click.echo(f"{len(users)} users imported")


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(auth.ROLES), required=True)
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(username, role, display_name, password_stdin):
    """Create or update a user (prompting for the password unless --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")
    try:
        auth.create_user(username, role, password=password, display_name=display_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {username} ({role}) saved")


@click.command("create-token")
@with_appcontext
@click.argument("username")
def create_token(username):
    """Print a new API token for USERNAME (shown once; replaces the previous one)."""
    try:
        click.echo(auth.create_token(username))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("seed-demo")
@with_appcontext
@click.option("--batches", "batch_count", default=2348, show_default=True)
@click.option("--masks", "mask_count", default=10000, show_default=True)
def seed_demo(batch_count, mask_count):
    """Fill an empty database with demo users, batches and mask files."""
    if not seed.is_empty():
        raise click.ClickException("the database already holds batches or masks; nothing seeded")
    logins = seed.seed_demo(batch_count, mask_count)
    click.echo(f"Seeded {batch_count} batches and {mask_count} mask files.")
    click.echo(f"Lead login: lead / {logins['lead']}")
    click.echo(f"Segmenter logins: {', '.join(seed.SEGMENTERS)} / {logins[seed.SEGMENTERS[0]]}")


def init_app(app):
    for command in (import_batches, import_users, create_user, create_token, seed_demo):
        app.cli.add_command(command)
