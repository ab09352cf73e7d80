"""The one small exception hierarchy of tinyir.

Every error a user can cause derives from :class:`TinyIRError`; the CLI prints its
message on one line and exits with code 2.  Anything else is a bug in tinyir.
"""


class TinyIRError(Exception):
    """Base class: a problem with the user's input, reported in one line."""


class InputError(TinyIRError):
    """A model file or option that tinyir cannot accept (missing, corrupt, hostile)."""


class ParseError(InputError):
    """A syntax error in textual IR, with file:line:col and a caret line."""

    def __init__(self, message: str, filename: str = "<string>", line: int = 0, col: int = 0,
                 source_line: str = ""):
        self.filename, self.line, self.col, self.source_line = filename, line, col, source_line
        self.bare = message
        text = f"{filename}:{line}:{col}: {message}"
        if source_line:
            text += "\n  " + source_line + "\n  " + " " * max(col - 1, 0) + "^"
        super().__init__(text)


class VerifyError(TinyIRError):
    """The graph breaks an IR invariant (the model is malformed)."""


class UnsupportedError(TinyIRError):
    """A valid model uses something this part of tinyir does not handle."""


class PassError(TinyIRError):
    """A pass could not run: its precondition failed (the message says which)."""
