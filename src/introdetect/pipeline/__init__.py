"""The pipeline stages, one module each: what a stage reads, does and writes.

``stages/<name>.py`` parses the paths given on its ``cmd:`` line in dvc.yaml (the one
place paths are written) and calls ``introdetect.pipeline.<name>.run``. Each module
imports only what its stage uses, so dvc.yaml can list exactly the modules a stage
depends on.
"""
