"""Stage 'featurize': decode each episode once into the feature store.

Paths: this stage's cmd in dvc.yaml.
"""

import sys

from introdetect.pipeline.featurize import run
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("featurize", run))
