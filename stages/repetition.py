"""Stage 'repetition': cross-episode repetition channels.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.repetition import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("repetition", run))
