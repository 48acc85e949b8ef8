"""Stage 'repetition': cross-episode repetition channels.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.repetition import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("repetition", run))
