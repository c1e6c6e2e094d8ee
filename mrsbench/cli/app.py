# PYTHON_ARGCOMPLETE_OK
"""The ``mrsbench`` entry point: parse the arguments, run one handler, turn errors into exit codes (2: bad
input, one line; 1: internal error; 130/143: interrupted)."""
from __future__ import annotations

import sys

from mrsbench.core.errors import MRSBenchError
from mrsbench.cli.commands import EXIT_USER_ERROR


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound like Ctrl-C (temporary files removed, an open MLflow run marked FAILED)."""


def _on_sigterm(signum, frame):
    raise Terminated(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    import os
    import signal
    import time

    from mrsbench.core.clock import start
    start(time.perf_counter())
    from mrsbench.core.parallel import openmp_defaults
    openmp_defaults()   # before anything imports torch

    import mrsbench.cli.commands as commands
    from mrsbench.cli.parser import build_parser

    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:   # shell completion (argcomplete): answers and exits
        import argcomplete
        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if getattr(args, "json", False) and hasattr(args, "quiet"):
        args.quiet = True                          # machine-readable output: no progress bars either
    if getattr(args, "quiet", False):
        os.environ["TQDM_DISABLE"] = "1"          # every progress bar, the library's included (tqdm >= 4.66)
        if hasattr(args, "no_progress"):
            args.no_progress = True
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USER_ERROR
    # SIGTERM (a scheduler's kill, `timeout`) unwinds like Ctrl-C: temporary files and folders are
    # removed, an open MLflow run is marked FAILED
    old = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        rc = getattr(commands, args.handler)(args)   # the parser names the handlers of mrsbench.cli.commands
    except MRSBenchError as e:
        print(f"mrsbench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:
        # 128 + the signal's number, the shell's convention: SIGTERM 143, SIGINT (Ctrl-C) 130
        print("terminated: nothing was written" if isinstance(e, Terminated) else "interrupted: nothing was written",
              file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:   # output piped into `head` and the like: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as e:
        if os.environ.get("MRSBENCH_DEBUG"):
            raise
        msg = str(e).splitlines()[0][:300] if str(e) else ""
        print(f"mrsbench {args.command}: internal error: {type(e).__name__}: {msg} "
              "(set MRSBENCH_DEBUG=1 for the traceback; please report it)", file=sys.stderr)
        return 1
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return int(rc or 0)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
