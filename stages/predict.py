"""Stage 'predict': Predict intro intervals for the test episodes."""

import sys

from introdetect.pipeline import run_predict
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("predict", run_predict))
