"""Shared fixtures: TensorFlow is imported quietly once for the whole session."""

import os

os.environ.setdefault("RNNCOURSE_SCALE", "ci")
os.environ.setdefault("RNNCOURSE_PROGRESS", "0")

from rnncourse.config import quiet_tensorflow  # noqa: E402

quiet_tensorflow()
