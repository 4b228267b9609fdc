"""Command-line tasks: `flask --app app <command>`. Messages are in DEFAULT_LOCALE."""
import getpass
import json
import os
import sys

import click
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_babel import ngettext
from pymongo import UpdateOne

import auth
import batch_progress
import db
import gridfs_orphans
import imports
import job_errors
import jobs
import migrations
import rate_limit
import search
import seed
from batch_service import new_batch
from cache import writes
from timeutil import utcnow

IMPORT_CHUNK = 1000


def _load_json_list(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise click.ClickException(_("cannot read %(path)s: %(reason)s", path=path, reason=exc)) from exc
    if not isinstance(data, list):
        raise click.ClickException(_("%(path)s must hold a JSON list of objects", path=path))
    return data


def _checked(check, records):
    """The clean records, or a ClickException naming every bad record and field (nothing is written)."""
    try:
        return check(records)
    except imports.ImportProblems as exc:
        shown = exc.problems[:imports.MAX_REPORTED]
        more = len(exc.problems) - len(shown)
        raise click.ClickException(_("nothing imported; fix these first:") + "\n  " + "\n  ".join(shown)
                                   + ("\n  " + _("… and %(more)s more", more=more) if more else "")) from None


def _batch_upsert(record, now):
    defaults = new_batch(record["id"], source="import", now=now)
    fields = {k: v for k, v in record.items() if k != "id"}
    if "name" in fields:
        fields["search_keys"] = search.keys_for(record["id"], fields["name"])
    on_insert = {k: v for k, v in defaults.items() if k not in fields and k != "updated_at"}
    return UpdateOne({"id": record["id"]},
                     {"$set": {**fields, "updated_at": now}, "$setOnInsert": on_insert}, upsert=True)


@click.command("import-batches")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_batches(path):
    """Upsert the batches of a JSON file (a list of objects with at least `id`).

    Every record is checked first (imports.py); one bad record imports nothing. Recorded as
    an `import` job run by this process (progress on the Jobs page, cancellable there).
    """
    records = _checked(imports.check_batches, _load_json_list(path))
    job = jobs.start_here("import", f"cli:{getpass.getuser()}", total=len(records), unit="batches",
                          params={"file": os.path.basename(path)})
    counts = {"imported": 0, "inserted": 0, "updated": 0}
    try:
        with jobs.keep_lease(job), \
                click.progressbar(length=len(records), label=_("Importing batches"), file=sys.stderr) as bar:
            now = utcnow()
            for start in range(0, len(records), IMPORT_CHUNK):
                chunk = records[start:start + IMPORT_CHUNK]
                inserted, updated = upsert_batches(chunk, now)
                counts["inserted"] += inserted
                counts["updated"] += updated
                counts["imported"] += len(chunk)
                jobs.checkpoint(job, counts["imported"], len(records), "batches")
                bar.update(len(chunk))
    except jobs.Cancelled:
        jobs.cancelled(job, counts)
        raise click.ClickException(_("cancelled from the Jobs page after %(n)s batches",
                                     n=counts["imported"])) from None
    except Exception as exc:
        jobs.fail(job, job_errors.record("unexpected", exception=exc.__class__.__name__), counts)
        raise
    jobs.finish(job, counts)
    click.echo(ngettext("%(num)s batch: %(new)s new, %(updated)s already present (updated)",
                        "%(num)s batches: %(new)s new, %(updated)s already present (updated)",
                        len(records), new=counts["inserted"], updated=counts["updated"]))


@writes
def upsert_batches(records, now):
    """Upsert one chunk of validated batch records; returns (inserted, updated)."""
    result = db.batches().bulk_write([_batch_upsert(r, now) for r in records], ordered=False)
    # image_count and status may have changed: recompute the stored progress.
    db.batches().update_many({"id": {"$in": [r["id"] for r in records]}}, [batch_progress.STAGE])
    return result.upserted_count, result.matched_count


@click.command("import-users")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_users(path):
    """Upsert the users of a JSON file: [{username, role, display_name?, password?}].

    Every record is checked first (as create-user checks); one bad record imports nothing."""
    users = _checked(imports.check_users, _load_json_list(path))
    _create_users(users)
    click.echo(ngettext("%(num)s user imported", "%(num)s users imported", len(users)))


@writes
def _create_users(users):
    """All of them, with one cache version bump at the end."""
    with click.progressbar(users, label=_("Importing users"), file=sys.stderr) as bar:
        for user in bar:
            auth.create_user(user["username"], user["role"], password=user.get("password"),
                             display_name=user.get("display_name"))


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
        password = click.prompt(_("Password"), hide_input=True, confirmation_prompt=True)
    try:
        saved = auth.create_user(username, role, password=password, display_name=display_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_("user %(name)s (%(role)s) saved", name=username, role=role))
    if not saved["active"]:
        click.echo(_("the account is deactivated: `activate-user %(name)s` lets it log in again", name=username))


@click.command("create-token")
@with_appcontext
@click.argument("username")
def create_token(username):
    """Print a new API token for USERNAME (shown once; replaces the previous one)."""
    try:
        click.echo(auth.create_token(username))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc


def _account_command(name, help_text, action, done):
    """A command taking one USERNAME that changes the account; LookupError -> a clear message."""
    @click.command(name, help=help_text)
    @with_appcontext
    @click.argument("username")
    def command(username):
        try:
            result = action(username)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(done.format(username=username, result=result))
    return command


deactivate_user = _account_command(
    "deactivate-user", "Stop USERNAME from logging in; ends their sessions and API token.",
    lambda username: auth.set_active(username, False),
    "user {username} deactivated; their sessions and API token no longer work")
activate_user = _account_command(
    "activate-user", "Let a deactivated USERNAME log in again (with a new token if needed).",
    lambda username: auth.set_active(username, True), "user {username} activated")
revoke_token = _account_command(
    "revoke-token", "End the API token of USERNAME (create-token gives a new one).",
    lambda username: auth.revoke_access(username, sessions=False),
    "the API token of {username} no longer works")
revoke_sessions = _account_command(
    "revoke-sessions", "End every browser session and the API token of USERNAME.",
    auth.revoke_access, "{result} session(s) and the API token of {username} ended")



def _unlock_login(username):
    if not db.users().count_documents({"username": username}, limit=1):
        raise LookupError(f"no user {username!r}")
    return rate_limit.limiter().unlock(username)


unlock_login = _account_command(
    "unlock-login", "Forget the failed logins counted for USERNAME, from every address.",
    _unlock_login, "{result} failed-login count(s) of {username} cleared; they may log in now")


@click.command("remove-orphan-chunks")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
def remove_orphan_chunks(dry_run):
    """Delete GridFS chunks that no file owns (left by interrupted uploads, older than an hour)."""
    file_ids = gridfs_orphans.find()
    if dry_run:
        click.echo(_("%(files)s file(s) have orphaned chunks; nothing removed (--dry-run)", files=len(file_ids)))
        return
    deleted = gridfs_orphans.remove(file_ids)
    click.echo(_("removed %(chunks)s orphaned chunk(s) of %(files)s file(s)", chunks=deleted, files=len(file_ids)))


@click.command("seed-demo")
@with_appcontext
@click.option("--batches", "batch_count", default=2348, show_default=True)
@click.option("--masks", "mask_count", default=10000, show_default=True)
def seed_demo(batch_count, mask_count):
    """Fill an empty database with demo users, batches and mask files."""
    if not seed.is_empty():
        raise click.ClickException(_("the database already holds batches or masks; nothing seeded"))
    logins = seed.seed_demo(batch_count, mask_count)
    click.echo(_("Seeded %(batches)s batches and %(masks)s mask files.", batches=batch_count, masks=mask_count))
    click.echo(_("Lead login: %(login)s", login="lead / " + logins["lead"]))
    click.echo(_("Segmenter logins: %(logins)s",
                 logins=", ".join(seed.SEGMENTERS) + " / " + logins[seed.SEGMENTERS[0]]))


def init_app(app):
    for command in (import_batches, import_users, create_user, create_token, seed_demo,
                    deactivate_user, activate_user, revoke_token, revoke_sessions, unlock_login,
                    remove_orphan_chunks, migrations.migrate_command):
        app.cli.add_command(command)
