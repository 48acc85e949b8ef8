"""Stage 'demo_data': Generate the built-in demo dataset (when data.source is demo)."""

import sys

from introdetect.pipeline import run_demo_data
from introdetect.runner import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("demo_data", run_demo_data))
