"""Stage 'demo_data': Generate the built-in demo dataset (when data.source is demo)."""

import sys

from introdetect.runner import run_stage
from introdetect.synth import run_demo_data

if __name__ == "__main__":
    sys.exit(run_stage("demo_data", run_demo_data))
