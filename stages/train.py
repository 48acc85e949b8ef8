"""Stage 'train': Train the BiLSTM and its heads on cached features."""

import sys

from introdetect.pipeline import run_train
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("train", run_train))
