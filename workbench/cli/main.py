"""The entry point: parse, set up logging, run the command, and turn what it raised into one exit status.

Exit statuses: 0 done; 2 bad input (any WorkbenchError: its message and hint say what to fix); 1 a run that
failed (status.json keeps the error) or a bug in the workbench (logged with its traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from workbench.cli.parser import build_parser
from workbench.core.errors import WorkbenchError
from workbench.core.logs import setup_logging

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2  # bad config / arguments / files: the message says what to fix
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_command(args.handler, args)


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The one error path of every command."""
    try:
        return handler(args)
    except WorkbenchError as e:
        print(f"error: {e.display()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        log.exception("internal error in `%s`", getattr(args, "command", "?"))
        print(f"internal error ({type(e).__name__}), see the log above for the traceback", file=sys.stderr)
        return EXIT_BUG
