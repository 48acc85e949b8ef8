"""Stage 'train': the BiLSTM on cached features.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.train import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("train", run))
