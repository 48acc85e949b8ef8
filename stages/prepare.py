"""Stage 'prepare': Find episodes, clean labels, write data/index/."""

import sys

from introdetect.pipeline import run_prepare
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("prepare", run_prepare))
