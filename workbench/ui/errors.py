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
from workbench.core.policy import acting_as

log = logging.getLogger(__name__)


def to_gr_error(e: Exception) -> gr.Error:
    if isinstance(e, gr.Error):
        return e
    if not isinstance(e, WorkbenchError):
        log.exception("internal error in a UI handler")
    return gr.Error(describe(e), print_exception=False)


def _split_request(args: tuple) -> tuple[str | None, tuple]:
    """(the signed-in user, the handler's own arguments). Gradio puts its request first (see _with_request);
    a handler called from Python (another handler, a test) gets its arguments as they are."""
    if args and isinstance(args[0], gr.Request):
        return getattr(args[0], "username", None) or None, args[1:]
    return None, args


def _with_request(fn, wrapper):
    """Declare Gradio's request as the wrapper's first parameter: Gradio inserts a gr.Request-typed parameter at
    its position, so first is right however many optional inputs a caller sends, and the API does not show it."""
    sig = inspect.signature(fn)
    first = inspect.Parameter("_request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    wrapper.__signature__ = sig.replace(parameters=[first, *sig.parameters.values()])
    wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), "_request": gr.Request}
    return wrapper


def handler(fn):
    """Wrap a Gradio handler (function or generator) so its errors reach the user the same way in every tab,
    and the signed-in user (under --auth) is the caller the job boundary sees (core/policy.py: acting_as)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            user, args = _split_request(args)
            steps = None
            try:
                steps = fn(*args, **kwargs)
                while True:
                    with acting_as(user):  # each step may run on another worker thread
                        try:
                            item = next(steps)
                        except StopIteration:
                            return
                    yield item
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - every error becomes a message; bugs are logged
                raise to_gr_error(e) from None
            finally:
                if steps is not None:
                    steps.close()  # a cancelled event closes the handler's generator too
        return _with_request(fn, gen_wrapper)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        user, args = _split_request(args)
        try:
            with acting_as(user):
                return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - every error becomes a message; bugs are logged
            raise to_gr_error(e) from None
    return _with_request(fn, wrapper)
