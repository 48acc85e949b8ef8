"""Stage 'prepare': index episodes and clean labels.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.prepare import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("prepare", run))
