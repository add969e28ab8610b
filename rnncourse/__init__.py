"""rnncourse: the runnable code of the book *Training recurrent networks in practice*.

Modules, one per concern (each chapter of the book calls into one of them):

* :mod:`rnncourse.config` - scale (``RNNCOURSE_SCALE``), seeds, cache directory, quiet TF
* :mod:`rnncourse.data` - real corpora fetched offline-safe from PyPI, synthetic tasks
* :mod:`rnncourse.devices` - GPU/cuDNN detection, distribution strategy
* :mod:`rnncourse.models` - model builders shared by the chapters
* :mod:`rnncourse.plots` - the book's figures, in one style

Import the package before TensorFlow: its modules import TensorFlow without the
start-up log lines (see :func:`rnncourse.config.quiet_tensorflow`).
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
