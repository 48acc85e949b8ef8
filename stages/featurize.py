"""Stage 'featurize': decode each episode once into the feature store.

Paths: this stage's cmd in dvc.yaml.
"""

from introdetect.pipeline.featurize import run
from introdetect.runner import exit_process, run_stage

if __name__ == "__main__":
    exit_process(run_stage("featurize", run))
