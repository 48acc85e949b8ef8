"""Stage 'repetition': cross-episode repetition channels from cached features."""

import sys

from introdetect.pipeline import run_repetition
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("repetition", run_repetition))
