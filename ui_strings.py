"""Strings the page scripts show, and the names of the statuses.

The scripts (static/*.js) look their sentences up with `t("English text", params)`;
every such text is listed here with N_() so that `pybabel extract -k N_` puts it in the
catalog, and base.html renders the translations as the `segdash-strings` JSON block.
A text missing here shows in English: tests/test_i18n.py checks that none is.
"""
import functools

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

import policy
from policy import N_  # marks a text for extraction; translated when shown

# The status names shown in the pages; the API keeps the machine values.
STATUS_LABELS = {
    "pending": _l("Pending"),
    "assigned": _l("Assigned"),
    "in_progress": _l("In progress"),
    "completed": _l("Completed"),
    "reviewed": _l("Reviewed"),
    "rejected": _l("Rejected"),
}


ROLE_LABELS = {
    "segmenter": _l("segmenter"),
    "lead": _l("lead"),
    "admin": _l("admin"),
}


def role_label(role):
    label = ROLE_LABELS.get(role)
    return str(label) if label is not None else str(role or "")


# Where a batch came from (metadata.source) and the kinds of jobs, as shown to people.
SOURCE_LABELS = {
    "manual": _l("created by hand"),
    "import": _l("imported"),
    "auto-create": _l("auto-created from files"),
    "seed": _l("demo data"),
}
JOB_LABELS = {
    "sync": _l("sync"),
    "auto_create": _l("auto-create"),
}


def job_label(kind):
    label = JOB_LABELS.get(kind)
    return str(label) if label is not None else str(kind)


def status_label(status):
    """A status as shown on its own ("In progress")."""
    label = STATUS_LABELS.get(status)
    return str(label) if label is not None else str(status).replace("_", " ").capitalize()


def status_name(status):
    """A status inside a sentence ("in progress")."""
    return status_label(status).lower()


SCRIPT_MESSAGES = (
    N_("Your session has ended. Reload the page and log in again."),
    N_("You are not allowed to do this."),
    N_("Not found."),
    N_("The file is larger than the upload limit."),
    N_("The database is not reachable right now; try again shortly."),
    N_("The server could not complete the request. Try again in a moment."),
    N_("The request failed (HTTP %(status)s)."),
    N_("Could not reach the server. Check the connection and try again."),
    N_("The upload was interrupted. Check the connection and try again."),
    N_("The upload was cancelled."),
    N_("%(n)s batch"),
    N_("%(n)s batches"),
    N_("Showing %(first)s–%(last)s of %(things)s"),
    N_("‹ Previous"),
    N_("Previous page"),
    N_("Page %(n)s"),
    N_("Next ›"),
    N_("Next page"),
    N_("Choose the batch to upload into."),
    N_("Choose a mask file to upload."),
    N_("“%(file)s” is %(size)s, larger than the %(limit)s upload limit."),
    N_("“%(file)s” is empty."),
    N_("Uploading %(file)s… %(percent)s"),
    N_("Uploading %(file)s… %(percent)s (%(loaded)s of %(total)s)"),
    N_("Upload finished."),
    N_("Deduplicated:"),
    N_("an identical file is already stored as “%(file)s” in %(batch)s, so nothing new was stored."),
    N_("an identical file is already stored as “%(file)s”, so nothing new was stored."),
    N_("That file belongs to another batch."),
    N_("Stored:"),
    N_("“%(file)s” (%(size)s) in %(batch)s."),
    N_("“%(file)s” (%(size)s)."),
    N_("Upload failed."),
    N_("Created"),
    N_("Assigned"),
    N_("Started"),
    N_("Completed"),
    N_("Reviewed"),
    N_("Rejected"),
    N_("Unassigned"),
    N_("Name"),
    N_("Status"),
    N_("Segmenter"),
    N_("Images"),
    N_("Masks"),
    N_("Progress"),
    N_("Source"),
    N_("Last updated"),
    N_("No events recorded."),
    N_("No status change is possible from %(status)s."),
    N_("Only the segmenter of this batch or a lead can change it."),
    N_("No masks yet."),
    N_("Download"),
    N_("(no name)"),
    N_("(version %(version)s of %(count)s)"),
    N_("Done: the batch is now %(status)s."),
    N_("Assigned to %(name)s."),
    N_("The batch is unassigned."),
    N_("Could not load the segmenters: %(reason)s"),
    N_("This page is past the end of the list."),
    N_("No batches match these filters."),
    N_("There are no batches yet."),
    N_("Show all batches"),
    N_("Select %(id)s"),
    N_("status %(status)s"),
    N_("unassigned"),
    N_("assigned to %(name)s"),
    N_("starting with “%(text)s”"),
    N_("The batches could not be loaded."),
    N_("Clear the filters"),
    N_("%(n)s batch selected"),
    N_("%(n)s batches selected"),
    N_("No batches selected"),
    N_("Assigned %(n)s batch to %(name)s."),
    N_("Assigned %(n)s batches to %(name)s."),
    N_("Unassigned %(n)s batch."),
    N_("Unassigned %(n)s batches."),
    N_("Already assigned to %(name)s"),
    N_("Already unassigned"),
    N_("Not changed because their work is handed in (completed or reviewed)"),
    N_("No longer exist"),
    N_("Could not assign: %(reason)s"),
    N_("There are no active segmenters to assign batches to yet."),
    N_("To start"),
    N_("In progress"),
    N_("To redo"),
    N_("Upload a mask to %(id)s"),
    N_("Upload…"),
    N_("%(masks)s of %(n)s mask"),
    N_("%(masks)s of %(n)s masks"),
    N_("None of your batches is %(status)s."),
    N_("No batches are assigned to you right now. A lead assigns them on the Batches page."),
    N_("%(n)s batch assigned to you"),
    N_("%(n)s batches assigned to you"),
    N_("Your batches could not be loaded."),
    N_("%(id)s is now %(status)s."),
    N_("Could not update %(id)s: %(reason)s"),
    N_("%(done)s of %(total)s completed or reviewed"),
    N_("for %(n)s image"),
    N_("for %(n)s images"),
    N_("of %(n)s mask file"),
    N_("of %(n)s mask files"),
    N_("Figures as of %(time)s"),
    N_("No batches yet."),
    N_("No batches are assigned yet. Assign some on the Batches page."),
    N_("%(done)s / %(total)s done (%(percent)s)"),
    N_("%(n)s batch completed in the last 30 days; busiest day %(day)s (%(busiest)s)."),
    N_("%(n)s batches completed in the last 30 days; busiest day %(day)s (%(busiest)s)."),
    N_("No batch was completed in the last 30 days."),
    N_("%(day)s: %(n)s completed"),
    N_("Could not load the figures: %(reason)s"),
    N_("Sync files"),
    N_("Linking unlinked mask files to their batches…"),
    N_("Auto-create batches"),
    N_("Creating the batches that files name but that do not exist…"),
    N_("Check files"),
    N_("Auditing the mask files…"),
    N_("The running “%(job)s” job failed: %(reason)s."),
    N_("unknown error"),
    N_("… and %(n)s more."),
    N_("%(groups)s of identical files (%(files)s)."),
    N_("%(n)s group"),
    N_("%(n)s groups"),
    N_("%(n)s file"),
    N_("%(n)s files"),
    N_("Sync finished"),
    N_("in %(duration)s."),
    N_("Scanned %(n)s unlinked file."),
    N_("Scanned %(n)s unlinked files."),
    N_("Linked %(files)s to %(batches)s."),
    N_("file"),
    N_("files"),
    N_("batch"),
    N_("batches"),
    N_("%(unmatched)s; %(missing)s."),
    N_("%(n)s file matches no batch"),
    N_("%(n)s files match no batch"),
    N_("%(n)s batch named by files does not exist"),
    N_("%(n)s batches named by files do not exist"),
    N_("Files that match no batch"),
    N_("Their names contain no batch token (e.g. batch_0007 or b7). Rename them or upload them to a batch."),
    N_("Batches named by files but missing"),
    N_("Use “Auto-create batches” to create them, then sync again."),
    N_("Every mask file is already linked."),
    N_("Auto-create finished."),
    N_("Created %(n)s new pending batch."),
    N_("Created %(n)s new pending batches."),
    N_("%(n)s batch named by files already existed."),
    N_("%(n)s batches named by files already existed."),
    N_("Stopped at the per-run limit: %(n)s more batch to create. Run it again."),
    N_("Stopped at the per-run limit: %(n)s more batches to create. Run it again."),
    N_("Run “Sync files” to link their files to the new batches."),
    N_("No batch was missing."),
    N_("Check finished."),
    N_("%(n)s mask file: %(linked)s linked, %(unlinked)s unlinked."),
    N_("%(n)s mask files: %(linked)s linked, %(unlinked)s unlinked."),
    N_("Unlinked files that match no batch"),
    N_("“Auto-create batches” creates them."),
    N_("Batches without masks"),
    N_("Showing the first 100 by id."),
    N_("Identical files (%(n)s group)"),
    N_("Identical files (%(n)s groups)"),
    N_("No problems found."),
    N_("Another “%(job)s” job is running; waiting for it to finish…"),
    N_("%(job)s failed: %(reason)s"),
    N_("%(done)s of %(total)s files (%(percent)s)"),
    N_("%(done)s of %(total)s batches (%(percent)s)"),
)


@functools.lru_cache(maxsize=16)
def _strings_for(locale):
    return {"messages": {text: gettext(text) for text in SCRIPT_MESSAGES},
            "statuses": {status: status_label(status) for status in policy.STATUSES},
            "sources": {source: str(label) for source, label in SOURCE_LABELS.items()}}


def page_strings(locale):
    """The `segdash-strings` block for `locale` (the request's, whose catalog gettext uses)."""
    return _strings_for(locale)
