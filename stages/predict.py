"""Stage 'predict': answers for the test episodes.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.predict import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("predict", run))
