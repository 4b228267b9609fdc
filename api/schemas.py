"""The API contract: every request's input and every response body, as pydantic models.

The request models are what the routes validate with (validation.py); the response
models only describe. Both make the OpenAPI document (api/openapi.py), so a bound is
written here once. Field order is the order in which problems are reported.
"""
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

import auth
import batch_service
import history
import job_errors
import jobs
import mask_preview
import policy
from batch_ids import MAX_REFERENCE, canonical_batch_id
from policy import N_
from validation import (
    AtMostSetting,
    Choice,
    EmptyIsAbsent,
    JsonInt,
    QueryInt,
    Request,
    UploadedFile,
    plain,
    query_choice,
    query_int,
    query_text,
    text,
)

MAX_LIST_LIMIT = 10_000  # longest list in a file audit
MAX_JOBS = 100
MAX_USERS = 1000

Username = Annotated[plain(64), Field(description="A username (a plain string of at most 64 characters).")]
Status = Annotated[plain(32), Choice(policy.STATUSES, code="invalid_status")]


def _batch_reference(value):
    batch_id = canonical_batch_id(value)
    if batch_id is None:
        raise PydanticCustomError("invalid_batch_id", N_("%(value)s is not a batch id."),
                                  {"value": repr(str(value)[:40])})
    return batch_id


BatchReference = Annotated[str, BeforeValidator(_batch_reference), Field(
    max_length=MAX_REFERENCE,
    description="A batch in any spelling: `batch_0007`, `Batch-7`, `b.7`, `B 0007`, `7` "
                "(surrounding white space allowed).")]
Assignee = Annotated[Username | None, Field(
    description="An active segmenter's username (400 `invalid_assignee` otherwise), or null to unassign.")]


# ----------------------------------------------------------------------------- requests


class BatchFilter(Request):
    """The list filters, shared by the list and the CSV export."""
    status: query_choice(policy.STATUSES) = Field(
        None, description="Only batches in this status. An empty value is ignored.")
    assignee: query_text(64) = Field(
        None, description="Only batches assigned to this username; `none` for unassigned ones. "
                          "An empty value is ignored.")
    q: query_text(100) = Field(
        None, description="Batches whose id or name starts with this (any case), or that it names in "
                          "another spelling (`b7`, `Batch-7`, `7`). An empty value is ignored.")


class BatchSort(Request):
    """The order of the list and of the CSV export."""
    sort: query_choice(batch_service.SORTS) = Field(
        None, description="`id` (the default), `name`, `status`, `assignee`, `updated_at` or `progress`; "
                          "a `-` prefix sorts descending. Equal keys keep id order. An empty value is ignored.")


class BatchChange(Request):
    status: Status = None
    assignee: Assignee = None
    reason: text(policy.MAX_REASON) = Field(
        None, description="Why (1 to 1,000 characters, line breaks allowed). Required to reject a batch or to "
                          "reopen a reviewed one (400 `reason_required`); kept in the batch's history.")
    confirm_incomplete: bool = Field(
        None, description="`true` completes a batch that has fewer masks than images; without it that "
                          "answers 409 `incomplete_masks` with `mask_count` and `image_count`.")
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["status"]}, {"required": ["assignee"]}]})

    @model_validator(mode="before")
    @classmethod
    def _something(cls, data):
        # (Unknown fields are reported as such first.)
        if isinstance(data, dict) and set(data) <= set(cls.model_fields) and not {"status", "assignee"} & set(data):
            raise PydanticCustomError("invalid_value", N_("Send 'status' and/or 'assignee'."))
        return data


class AssignFilter(Request):
    """The list filters, as a JSON object."""
    status: Annotated[Status | None, Field(description="Only batches in this status.")] = None
    assignee: Annotated[plain(64) | None, Field(description="Only batches of this user; `none`: unassigned.")] = None
    q: Annotated[plain(100) | None, Field(description="As the list's `q`.")] = None


class BulkAssign(Request):
    ids: list[BatchReference] = Field(None, min_length=1, max_length=batch_service.MAX_BULK_IDS, description=(
        "The batches to (un)assign. Not together with `filter`."))
    filter: AssignFilter = Field(None, description=(
        f"Instead of `ids`: every batch matching these list filters (at most {batch_service.MAX_BULK_IDS:,}; "
        "400 `too_many` above)."))
    assignee: Assignee
    reason: text(policy.MAX_REASON) = Field(None, description="Why (optional, 1 to 1,000 characters); kept in "
                                                              "each changed batch's history.")

    @model_validator(mode="after")
    def _ids_or_filter(self):
        if (self.ids is None) == (self.filter is None):
            raise PydanticCustomError("invalid_value", N_("Send either 'ids' or 'filter'."))
        return self


class NoOptions(Request):
    """No options: an empty body or `{}`."""
    model_config = ConfigDict(json_schema_extra={"maxProperties": 0})


CreateLimit = Annotated[int, Field(ge=1), AtMostSetting("AUTO_CREATE_LIMIT")]


MAX_WAIT_SECONDS = 30


class WaitQuery(Request):
    wait: query_int(0, MAX_WAIT_SECONDS) = Field(0, description=(
        "Seconds (0-30) the request may wait for the job it starts to end: 200 with the job when it "
        "ended in time, else 202 as without it."))


class AutoCreateQuery(WaitQuery):
    limit: Annotated[CreateLimit, QueryInt()] = Field(
        None, description="Most batches to create (ignored when the body gives one).")


class AutoCreateOptions(Request):
    limit: Annotated[CreateLimit, JsonInt()] = Field(None, description="Most batches to create.")


class CheckQuery(Request):
    limit: query_int(1, MAX_LIST_LIMIT) = Field(100, description="Longest list returned for each finding.")


class CheckJobQuery(CheckQuery, WaitQuery):
    pass


class JobsQuery(Request):
    kind: query_choice(jobs.KINDS) = Field(None, description="Only jobs of this kind. An empty value is ignored.")
    state: query_choice(jobs.STATES) = Field(None, description="Only jobs in this state. An empty value is ignored.")
    limit: query_int(1, MAX_JOBS) = 20


class UsersQuery(Request):
    role: query_choice(auth.ROLES) = Field(None, description="Only users of this role. An empty value is ignored.")


class ReviewQuery(Request):
    after: query_text(MAX_REFERENCE) = Field(
        None, description="Skip to the batch after this one in the queue, in any spelling of its id (404 when "
                          "it names no batch). An empty value is ignored.")


class PreviewQuery(Request):
    size: query_int(mask_preview.MIN_SIZE, mask_preview.MAX_SIZE) = Field(
        mask_preview.DEFAULT_SIZE, description="Longest side of the preview, in pixels.")


class MaskUpload(Request):
    # Like a query string, a form may carry other fields (a page's own); they are not read.
    model_config = ConfigDict(extra="ignore")

    file: UploadedFile = Field(description="The mask's bytes (not empty). Its part's filename names the file "
                                           "unless `filename` is given.")
    filename: str = Field(None, description="The name to store the file under (sanitized; 400 "
                                            "`invalid_filename` when nothing usable is left).")
    batch_id: Annotated[BatchReference | None, EmptyIsAbsent()] = Field(
        None, description="The batch to link the file to (404 when unknown); empty means none (leads only).")


# ----------------------------------------------------------------------------- responses


class ResponseBody(BaseModel):
    """Base of the response schemas: they list every field a response has."""
    model_config = ConfigDict(extra="forbid")


Count = Annotated[int, Field(ge=0)]
BatchId = Annotated[str, Field(pattern=r"^batch_[0-9]{4,12}$", description="A canonical batch id.")]
ObjectIdText = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")]
Timestamp = datetime | None


class Error(ResponseBody):
    error: str = Field(min_length=1, description="A stable machine-readable code.")
    message: str = Field(min_length=1, description="A sentence for people.")
    request_id: str = Field(min_length=1, description="Equals the X-Request-ID response header.")
    job_id: str | None = Field(None, description="With `job_running` only; the running job.")
    mask_count: Count | None = Field(None, description="With `incomplete_masks` only: the batch's current masks.")
    image_count: Count | None = Field(None, description="With `incomplete_masks` only: the batch's images.")


class Healthy(ResponseBody):
    status: Literal["ok"]
    db: Literal["ok"]


class Degraded(ResponseBody):
    status: Literal["degraded"]
    db: Literal["unreachable"]


class BatchListItem(ResponseBody):
    id: BatchId
    name: str | None
    assignee: str | None
    status: Literal[policy.STATUSES]
    mask_count: Count
    image_count: Count
    progress: float = Field(ge=0, le=100, description="Percent of the images that have a mask.")
    updated_at: Timestamp
    rejection_reason: str | None = Field(
        None, description="Rejected batches only: the lead's reason for the latest rejection.")


class BatchPage(ResponseBody):
    items: list[BatchListItem] = Field(max_length=200)
    total: Count = Field(description="Batches matching the filters.")
    page: int = Field(ge=1)
    per_page: int = Field(ge=1)
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


class BatchMetadata(ResponseBody):
    created_at: Timestamp
    assigned_at: Timestamp
    started_at: Timestamp
    completed_at: Timestamp
    reviewed_at: Timestamp
    rejected_at: Timestamp
    source: str | None = Field(description="How it was made: seed, import, auto-create, manual …")


class MaskVersion(ResponseBody):
    id: str = Field(description="The GridFS file of this version (download it from /api/masks/<id>).")
    version: int = Field(ge=1)
    filename: str | None
    length: Count | None
    uploadDate: Timestamp
    uploaded_by: str | None
    created_at: Timestamp = Field(description="When the version was linked to the batch.")


class BatchMask(MaskVersion):
    version_count: int = Field(ge=1)
    older_versions: list[MaskVersion] = Field(
        description="Earlier versions of this name, newest first (downloadable, not counted).")


class BatchState(ResponseBody):
    status: Literal[policy.STATUSES] | None
    assignee: str | None


class HistoryEntry(ResponseBody):
    at: Timestamp
    actor: str | None = Field(description="Who made the change.")
    action: str = Field(description="The status change's name (`start`, `complete`, `review`, `reject`, "
                                    "`restart`, `reopen`, `reopen_review`), or `assign` / `unassign`.")
    from_: BatchState = Field(alias="from")
    to: BatchState
    reason: str | None


class Rejection(ResponseBody):
    reason: str | None
    by: str | None
    at: Timestamp


class BatchDetail(BatchListItem):
    metadata: BatchMetadata
    masks: list[BatchMask] = Field(description=(
        "The batch's current masks (one per name: the file name without directories, any case), "
        "by filename, each with its older versions."))
    last_rejection: Rejection | None = Field(description="The latest rejection (kept after the batch moves on).")
    history: list[HistoryEntry] = Field(max_length=history.LIMIT,
                                        description="Status and assignee changes, newest first (the latest 50).")


class ReviewNext(ResponseBody):
    batch_id: BatchId = Field(description="The completed batch that has waited longest (oldest `completed_at`).")


class AssignResult(ResponseBody):
    assigned: Count
    assignee: str | None
    unchanged: list[BatchId]
    not_found: list[BatchId]
    not_assignable: list[BatchId]


class SyncResult(ResponseBody):
    job_id: str
    files_scanned: Count = Field(description="Unlinked files looked at.")
    files_linked: Count
    batches_updated: Count
    unmatched: Count = Field(description="Files whose name names no batch.")
    unmatched_examples: list[str | None] = Field(max_length=20)
    missing_batches: Count = Field(description="Batches named by files but absent.")
    missing_batch_examples: list[BatchId] = Field(max_length=20)
    closed: Count = Field(description="Files naming reviewed batches; left unlinked.")
    closed_examples: list[str | None] = Field(max_length=20)
    closed_batch_examples: list[BatchId] = Field(max_length=20)
    duration_ms: Count


class AutoCreateResult(ResponseBody):
    job_id: str
    created: Count
    skipped_existing: Count
    limited: bool = Field(description="More batches are missing than `limit` allowed.")
    missing_remaining: Count


class DuplicateFile(ResponseBody):
    id: str
    filename: str | None


class Duplicate(ResponseBody):
    sha256: str
    count: int = Field(ge=2)
    files: list[DuplicateFile]


class CheckResult(ResponseBody):
    files_total: Count
    linked: Count
    unlinked: Count
    unmatched: list[str | None] = Field(description="Names of unlinked files naming no batch (up to `limit`).")
    unmatched_total: Count
    missing_batches: list[BatchId]
    missing_batches_total: Count
    closed: Count = Field(description="Unlinked files naming reviewed batches.")
    closed_examples: list[str | None] = Field(description="Their names (up to `limit`).")
    closed_batches: list[BatchId] = Field(description="The reviewed batches they name (up to `limit`).")
    batches_without_masks: list[BatchId]
    duplicates: list[Duplicate]
    orphan_chunk_files: Count = Field(description=(
        "Files whose chunks are stored without their file document (an upload cut off by a killed "
        "process); `flask --app app remove-orphan-chunks` removes them."))


class Totals(ResponseBody):
    batches: Count
    images: Count
    masks: Count
    files: Count
    linked_files: Count
    unlinked_files: Count
    done: Count = Field(description="Batches completed or reviewed.")


# Batches per status: every status present, 0 when none.
StatusCounts = type("StatusCounts", (ResponseBody,), {"__annotations__": {s: Count for s in policy.STATUSES}})


class AssigneeCounts(StatusCounts):
    assignee: str
    masks: Count


class DayCount(ResponseBody):
    date: date
    n: Count


class Progress(ResponseBody):
    done: Count
    total: Count
    percent: float = Field(ge=0, le=100)


class TeamMetrics(ResponseBody):
    totals: Totals
    by_status: StatusCounts
    by_assignee: list[AssigneeCounts]
    completed_per_day: list[DayCount] = Field(min_length=30, max_length=30,
                                              description="The last 30 days, oldest first.")
    progress: Progress
    generated_at: datetime
    stale: bool = Field(default=False, description=(
        "Present and true while another process recomputes the figures after a recent change: "
        "these are the last stored ones."))


class MaskFile(ResponseBody):
    id: ObjectIdText
    filename: str | None
    length: int = Field(ge=1)
    sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    batch_id: str | None = Field(description="The batch the file is linked to, if any.")
    version: int | None = Field(ge=1, description="Its version of the name in the batch; null when unlinked.")
    uploadDate: Timestamp
    deduplicated: bool


class JobProgress(ResponseBody):
    done: Count
    total: Count | None = Field(description="Null while not known yet.")
    unit: Literal["files", "batches"] | None


JobState = Literal[jobs.STATES]


class Job(ResponseBody):
    id: ObjectIdText
    kind: Literal[jobs.KINDS] | None
    state: JobState | None
    progress: JobProgress
    rate_per_s: float | None = Field(ge=0, description="Units per second in this run, once known.")
    eta_s: float | None = Field(ge=0, description="Seconds left at that rate, once known.")
    result: dict[str, Any] | None = Field(
        description="The operation's result once done (the counts so far when cancelled or failed).")
    error: str | None = Field(description="Why it failed, in English (null unless failed).")
    error_code: Literal[job_errors.CODES] | None = Field(
        description="Why it failed, as a stable code (null unless failed, and for jobs failed before codes existed).")
    error_message: str | None = Field(description="Why it failed, in the language of the request.")
    started_by: str | None
    created_at: Timestamp
    started_at: Timestamp
    finished_at: Timestamp
    cancel_requested: bool
    attempts: Count = Field(description="Runs so far; above 1 when resumed after a runner stopped.")
    runner: str | None = Field(description="The host:pid of the runner that last ran it.")


class JobAccepted(ResponseBody):
    job_id: ObjectIdText
    state: JobState


class JobEnded(Job):
    job_id: ObjectIdText


class JobList(ResponseBody):
    items: list[Job] = Field(max_length=MAX_JOBS)


class MySummary(ResponseBody):
    by_status: StatusCounts = Field(description="The caller's batches per status.")
    open: Count = Field(description="Batches assigned, in progress or rejected: work still to do.")
    done: Count = Field(description="Batches completed or reviewed.")
    masks: Count = Field(description="Masks in the caller's batches.")
    images: Count = Field(description="Images in the caller's batches.")


Workload = Annotated[dict[str, Count], Field(description="Open batches (assigned, in progress or rejected) "
                                                         "per username; users with none are left out.")]


class UserChoice(ResponseBody):
    username: str
    display_name: str


UserList = Annotated[list[UserChoice], Field(max_length=MAX_USERS)]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document."""
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
