"""Stage 'predict': answers for the test episodes.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.predict import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("predict", run))
