"""Stage 'demo_data': Generate the built-in demo dataset (when data.source is demo)."""

from introdetect.runner import exit_process, run_stage
from introdetect.synth import run_demo_data

if __name__ == "__main__":
    exit_process(run_stage("demo_data", run_demo_data))
