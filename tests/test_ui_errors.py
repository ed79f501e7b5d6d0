"""The one error path of every UI handler: a WorkbenchError is the user's message; anything else is a bug,
logged with its traceback and shown as an internal error."""
import logging

import gradio as gr
import pytest

from workbench.core.errors import DataError
from workbench.ui.errors import handler


@handler
def _refuses(text):
    if not text:
        raise DataError("no dataset given", "type a file path under data/")
    return {}[text]  # a bug: KeyError


@handler
def _streams(n):
    yield 1
    raise DataError(f"stopped after {n}")


def test_a_workbench_error_shows_its_message_and_hint():
    with pytest.raises(gr.Error) as e:
        _refuses("")
    assert e.value.message == "no dataset given\ntype a file path under data/"


def test_a_bug_is_logged_with_its_traceback_and_shown_as_internal(caplog):
    with caplog.at_level(logging.ERROR, logger="workbench"):
        with pytest.raises(gr.Error) as e:
            _refuses("x")
    assert "internal error (KeyError)" in e.value.message and "workbench.log" in e.value.message
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_generators_keep_streaming_and_report_the_same_way():
    gen = _streams(3)
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="stopped after 3"):
        next(gen)
