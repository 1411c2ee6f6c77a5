"""One exception hierarchy for SPIRAL.

Every message says what to do next; the CLI prints it on one line and exits
non-zero without a traceback, and a LangGraph server passes it to the client
(its serializer forwards the messages of `RuntimeError` subclasses, which SpiralError is,
and hides others as "An internal error occurred"; not `ValueError`: pydantic would wrap it).
"""

from __future__ import annotations

import errno
import sqlite3


class SpiralError(RuntimeError):
    """Base of every error SPIRAL raises on purpose."""

    exit_code = 2


class InputError(SpiralError):
    """Bad user input: an image that cannot be read, sizes out of range, ..."""


class ActionParseError(InputError):
    """The action text is outside what the rule planner's grammar understands."""


class UnknownBackboneError(InputError):
    """A backbone name that is not registered."""


class PerceptionError(SpiralError):
    """The start image does not show a scene the offline agents can read."""


class ResumeError(SpiralError):
    """A thread that cannot be resumed (unknown id, already finished, ...)."""


class LLMUnavailableError(SpiralError):
    """The LLM server could not be reached or kept failing after the bounded retries."""


class DamagedDataError(InputError):
    """A file SPIRAL wrote that no longer reads back: a damaged database, an artifact whose bytes changed, a
    training state cut short. Nothing is changed; the message names the file and how to go on."""


DAMAGED_SQLITE = ("file is not a database", "malformed", "file is encrypted")
"""What SQLite says of a file that is not (or no longer) a database."""


def damaged_database(path: object, exc: BaseException) -> DamagedDataError:
    return DamagedDataError(f"{path} is damaged ({str(exc).splitlines()[0]}): move it aside to start it afresh "
                            "(a copy from a backup keeps its threads), or point --workspace elsewhere")


class WorkspaceError(SpiralError):
    """The workspace cannot be written: a read-only folder, a file where a folder should be, a full disk.
    Nothing committed is lost: the run resumes from its last saved step once the cause is fixed."""

    exit_code = 1


def storage_error(exc: BaseException, where: str) -> SpiralError | None:
    """A one-line error saying what happened, for the OS and SQLite errors a full disk, a read-only folder or
    a damaged database raise (None for any other error: that one is a bug and keeps its traceback)."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "disk is full" in text:
        return WorkspaceError(f"the disk holding {where} is full; free some space and resume the run "
                              "(`spiral resume THREAD_ID`): every step saved so far is kept")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) or \
            isinstance(exc, sqlite3.OperationalError) and "readonly" in text:
        return read_only_error(where)
    if isinstance(exc, sqlite3.DatabaseError) and any(k in text for k in DAMAGED_SQLITE):
        return damaged_database(f"a database in {where}", exc)
    return None


def read_only_error(where: str) -> WorkspaceError:
    return WorkspaceError(f"{where} is read-only for this user: writing commands need a writable "
                          "--workspace (reading ones, `traces` and `history`, work on it as it is)")
