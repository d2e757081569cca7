"""Errors a user can fix (bad config, bad record, missing file, bad video).

The command line prints a :class:`UserError` as one line naming what is wrong and where, without a traceback,
and exits with status 2 (``--debug`` or ``LIT_VIDEOR2_DEBUG=1`` shows the traceback). Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class of errors caused by the user's inputs; its message says what is wrong, where, and what to do."""
