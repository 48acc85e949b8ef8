"""Stage 'prepare': index episodes and clean labels.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.prepare import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("prepare", run))
