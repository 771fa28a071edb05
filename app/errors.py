"""Bugs told apart from outages: an outage says when to come back; a bug gets a short id that the log line with its
traceback carries, so an operator finds the cause instead of chasing a store that is fine."""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger("app")


def report_bug(err: BaseException) -> str:
    """Log the error with its full traceback under a new short id, and return the id."""
    error_id = secrets.token_hex(4)
    log.error("error id %s: %s: %s", error_id, err.__class__.__name__, err, exc_info=err)
    return error_id


def bug_message(error_id: str) -> str:
    """What the user reads about a bug: that it is one, and the id that finds its traceback in the log."""
    return f"Something went wrong (error id {error_id}); the log has the details."
