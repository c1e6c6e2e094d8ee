# PYTHON_ARGCOMPLETE_OK
"""The command line: ``parser`` (every subcommand, its arguments and help), ``commands`` (one handler per
subcommand), ``app`` (the entry point ``mrsbench``: exit codes, signals)."""
from mrsbench.cli.app import Terminated, main

__all__ = ["main", "Terminated"]
