"""Stage 'evaluate': metrics against the test labels.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.evaluate import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("evaluate", run))
