"""Stage 'featurize': Decode each episode once; write per-episode HDF5 features."""

import sys

from introdetect.pipeline import run_featurize
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("featurize", run_featurize))
