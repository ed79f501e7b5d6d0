"""The command line, `python -m workbench <command>`: train, eval, merge.

main.py is the entry point and the one error path, parser.py the argument parser, options.py the options
generated from a config's fields, and one module per command.
"""
from workbench.cli.main import main

__all__ = ["main"]
