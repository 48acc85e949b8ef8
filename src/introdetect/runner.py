"""Shared entry-point plumbing: logging set-up and running a stage with one-line errors."""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from introdetect.errors import IntrodetectError
from introdetect.params import load_params

# Errors a user can cause: one line, no traceback. Anything else is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (IntrodetectError, FileNotFoundError)


def setup_logging(verbose: bool = False) -> None:
    """``LEVEL name: message`` on stderr; INTRODETECT_LOG=DEBUG for more."""
    level = os.environ.get("INTRODETECT_LOG", "DEBUG" if verbose else "INFO").upper()
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "introdetect", False)]:
        root.removeHandler(h)  # ours from an earlier call; other handlers are left alone
    handler = logging.StreamHandler()
    handler.introdetect = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("numba", "matplotlib", "PIL", "h5py", "fsspec", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def exit_process(code: int) -> None:
    """End the process with ``code``. After Ctrl-C (130) every ``finally`` has already run
    (temp files gone, finished episodes on disk), so the process ends with ``os._exit``,
    called from inside the ``except KeyboardInterrupt`` handler: CI saw a SIGSEGV after the
    one-line message twice, once in interpreter teardown and once (with teardown already
    skipped) between the handler and ``os._exit``, where leaving the handler frees the
    interrupted frames and the native objects (decoders, thread pools) only they held."""
    if code == 130:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def run_stage(name: str, fn: Callable[..., Any], argv: list[str] | None = None) -> int:
    """Run ``fn(params, **paths)``: every parameter of ``fn`` after the params becomes a
    required ``--option PATH`` (``index_dir`` -> ``--index-dir``), so the paths are written
    once, on the stage's ``cmd:`` line in dvc.yaml. User errors: one line, exit 1."""
    ap = argparse.ArgumentParser(description=f"introdetect pipeline stage: {name}")
    ap.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    params = list(inspect.signature(fn).parameters.values())[1:]
    names = [q.name for q in params]
    for q in params:
        required = q.default is inspect.Parameter.empty
        ap.add_argument(
            f"--{q.name.replace('_', '-')}",
            required=required,
            default=None if required else q.default,
            type=Path,
            help=q.name if required else f"{q.name} (default {q.default})",
        )
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger(f"introdetect.stage.{name}")
    try:
        fn(load_params(args.params), **{arg: getattr(args, arg) for arg in names})
    except USER_ERRORS as e:
        log.error("%s", e)
        if args.verbose:
            raise
        return 1
    except KeyboardInterrupt:
        log.error("interrupted: finished episodes are kept; run again to go on")
        if argv is None:  # a stage process: end it here (exit_process)
            exit_process(130)
        return 130
    return 0
