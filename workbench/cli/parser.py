"""The argument parser: one subcommand per command module (train, eval, generate, merge, jobs, worker, ...), plus
the options every command shares. Each command module adds its own arguments (add_parser) and names its handler."""
from __future__ import annotations

import argparse

import workbench.cli.eval as eval_cmd
import workbench.cli.export as export_cmd
import workbench.cli.generate as generate_cmd
import workbench.cli.jobs as jobs_cmd
import workbench.cli.merge as merge_cmd
import workbench.cli.serve as serve_cmd
import workbench.cli.train as train_cmd
import workbench.cli.worker as worker_cmd
from workbench.core.logs import LEVELS

COMMANDS = (train_cmd, eval_cmd, generate_cmd, merge_cmd, jobs_cmd, worker_cmd, serve_cmd, export_cmd)


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
    for command in COMMANDS:
        command.add_parser(sub, parents)
    return p
