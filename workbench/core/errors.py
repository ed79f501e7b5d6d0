"""One error type for everything a person can fix: WorkbenchError(message, hint).

The UI shows it in a red toast, the CLI prints it and exits 2, the HTTP API answers 4xx with it. Any other
exception is a bug: logged with its traceback and shown as "internal error, see the log". Subclasses exist
only where a caller must tell one kind from another (e.g. MalformedLinesError offers a repair).
"""
from __future__ import annotations


class WorkbenchError(Exception):
    """A problem with the user's input or files: `message` says what is wrong, `hint` what to do about it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def display(self) -> str:
        """The message with its hint, as shown to a person."""
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigError(WorkbenchError):
    """A setting a human must fix; the message names the setting and what is allowed."""


class PathError(WorkbenchError):
    """A path the UI may not touch; the message names the allowed folders."""


class PolicyError(WorkbenchError):
    """A request the server's operator did not allow (a secret, an endpoint, remote code, another user's job)."""


class DataError(WorkbenchError):
    """A dataset that cannot be read or mapped; the message says what was found and what is missing."""


class TemplateError(WorkbenchError):
    """A template file or a row that a template cannot render."""


class ModelError(WorkbenchError):
    """A model that cannot be found or loaded, or an adapter that does not fit its base."""


class RunError(WorkbenchError):
    """A run folder that cannot be used as asked (missing, unfinished, busy, outside outputs/)."""


class EvalError(WorkbenchError):
    """An evaluation that cannot run as asked."""


class ExportError(WorkbenchError):
    """A merge or export that cannot be done as asked."""


def describe(error: BaseException) -> str:
    """What a person sees for an error: a WorkbenchError's message and hint, or a pointer to the log."""
    if isinstance(error, WorkbenchError):
        return error.display()
    return f"internal error ({type(error).__name__}); see the log (outputs/workbench.log) for the traceback"
