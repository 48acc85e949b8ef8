"""Stage 'evaluate': Score predictions against test labels."""

import sys

from introdetect.pipeline import run_evaluate
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("evaluate", run_evaluate))
