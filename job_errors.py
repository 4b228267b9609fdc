"""Why a job failed: a stable code and its parameters, stored on the job.

The English text is stored beside them (the API's `error`, the logs); the text a person
reads is made from the code when shown, in the language of the request (`message`).
"""
from flask_babel import format_decimal, gettext

from policy import N_  # marks a text for extraction; translated when shown

TEXTS = {
    "runner_stopped": N_("the process running it stopped"),
    "step_timeout": N_("a step took longer than JOB_TIMEOUT_SECONDS (%(seconds)s s)"),
    "database_unreachable": N_("the database was unreachable for more than %(seconds)s s"),
    "unexpected": N_("an unexpected error (%(exception)s)"),
}
CODES = tuple(TEXTS)


def record(code, **params):
    """The fields a failed job stores: `error` (English), `error_code`, `error_params`."""
    return {"error": TEXTS[code] % params, "error_code": code, "error_params": params}


def message(job):
    """The job's error in the current language; the stored text for a job without a known code."""
    code = job.get("error_code")
    if code not in TEXTS:
        return job.get("error")
    params = {name: format_decimal(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
              else value for name, value in (job.get("error_params") or {}).items()}
    return gettext(TEXTS[code], **params)
