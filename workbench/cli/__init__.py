"""The command line, `python -m workbench <command>`: the parser, the entry point and the one error path.

The task commands a job's worker runs (train, merge, export, serve) are in tasks.py, eval, generate, jobs and
worker have a module each; options.py generates options from a config's fields. The standby process a
supervisor keeps warm is warm_worker.py.

Exit statuses: 0 done; 2 bad input (any WorkbenchError: its message and hint say what to fix); 1 a run that
failed (status.json keeps the error) or a bug in the workbench (logged with its traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

import workbench.cli.eval as eval_cmd
import workbench.cli.generate as generate_cmd
import workbench.cli.jobs as jobs_cmd
import workbench.cli.tasks as tasks
import workbench.cli.headless_supervisor as worker_cmd
from workbench.core.errors import WorkbenchError
from workbench.core.logs import LEVELS, setup_logging

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2  # bad config / arguments / files: the message says what to fix
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C

# In the order `--help` lists them; the task commands come from tasks.py.
COMMANDS = ("train", "eval", "generate", "merge", "jobs", "worker", "serve", "export")
OWN_MODULES = {"eval": eval_cmd, "generate": generate_cmd, "jobs": jobs_cmd, "worker": worker_cmd}


def common_options() -> argparse.ArgumentParser:
    """Options of every command, attached to each subparser (so they go after the command name)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="WARNING", choices=LEVELS, type=str.upper,
                        help="diagnostics shown on the console (default: WARNING)")
    return common


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench", description="Instruction fine-tuning workbench")
    sub = p.add_subparsers(dest="command", required=True)
    parents = [common_options()]
    for name in COMMANDS:
        if name in OWN_MODULES:
            OWN_MODULES[name].add_parser(sub, parents)
        else:
            tasks.add_parser(sub, parents, name)
    return p


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
