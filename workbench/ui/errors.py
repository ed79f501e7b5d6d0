"""The one way a UI handler reports a problem.

@handler on every public handler: a WorkbenchError becomes a red toast with its message and hint; anything
else is a bug, logged with its traceback and shown as "internal error, see the log". The app keeps serving.
"""
from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from workbench.core.errors import WorkbenchError, describe

log = logging.getLogger(__name__)


def to_gr_error(e: Exception) -> gr.Error:
    if isinstance(e, gr.Error):
        return e
    if not isinstance(e, WorkbenchError):
        log.exception("internal error in a UI handler")
    return gr.Error(describe(e), print_exception=False)


def handler(fn):
    """Wrap a Gradio handler (function or generator) so its errors reach the user the same way in every tab."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - every error becomes a message; bugs are logged
                raise to_gr_error(e) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - every error becomes a message; bugs are logged
            raise to_gr_error(e) from None
    return wrapper
