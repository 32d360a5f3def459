"""Errors that are the user's to fix.

Anything raised as :class:`HdlgenError` is reported by the command line as one line,
``error: <message>``, with a non-zero exit and no traceback. Everything else is a bug in
hdlgen and keeps its traceback.
"""


class HdlgenError(Exception):
    """A problem with the user's input (file, model, option), described in one line."""
