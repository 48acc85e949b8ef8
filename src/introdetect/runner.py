"""Shared entry-point plumbing: logging set-up and running a stage with one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

from introdetect.params import Params, ParamsError, load_params

# Errors a user can cause (bad data, bad params, missing inputs): one line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ParamsError,
    FileNotFoundError,
    ValueError,
    RuntimeError,
)


def setup_logging(verbose: bool = False) -> None:
    """``LEVEL name: message`` on stderr; INTRODETECT_LOG=DEBUG for more."""
    level = os.environ.get("INTRODETECT_LOG", "DEBUG" if verbose else "INFO").upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("numba", "matplotlib", "PIL", "h5py", "fsspec", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_stage(name: str, fn: Callable[[Params], Any], argv: list[str] | None = None) -> int:
    """Parse ``--params``, load them, run ``fn``; user errors become one line and exit 1."""
    ap = argparse.ArgumentParser(description=f"introdetect pipeline stage: {name}")
    ap.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger(f"introdetect.stage.{name}")
    try:
        fn(load_params(args.params))
    except USER_ERRORS as e:
        log.error("%s", e)
        if args.verbose:
            raise
        return 1
    return 0
