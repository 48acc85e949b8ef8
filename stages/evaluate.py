"""Stage 'evaluate': metrics against the test labels.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.evaluate import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("evaluate", run))
