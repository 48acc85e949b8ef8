"""Stage 'train': the BiLSTM on cached features.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.train import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("train", run))
