"""rnncourse: the runnable code of the book *Training recurrent networks in practice*.

The library, one module per concept (each imports only the ones above it):

* :mod:`rnncourse.config` - scale (``RNNCOURSE_SCALE``), seeds (``RNNCOURSE_SEED``), cache
* :mod:`rnncourse.data` - real corpora fetched offline-safe from PyPI, synthetic tasks
* :mod:`rnncourse.text` - vocabularies, the reserved ids (0 padding, 1 unknown), splits
* :mod:`rnncourse.glove` - the GloVe reader
* :mod:`rnncourse.embeddings` - embedding matrix with OOV rows, coverage, neighbours
* :mod:`rnncourse.devices` - GPU/cuDNN detection and the cuDNN rules
* :mod:`rnncourse.models` - one cell registry, one builder per model family
* :mod:`rnncourse.cells`, :mod:`rnncourse.gradients`, :mod:`rnncourse.batching`,
  :mod:`rnncourse.tbptt`, :mod:`rnncourse.training` - the tools each chapter teaches
* :mod:`rnncourse.mingru`, :mod:`rnncourse.budget` - the minGRU layer (parallel scan),
  parameter matching and the cost counter of recurrent and attention models
* :mod:`rnncourse.plots` - the book's figures, in one style

The book's own experiments are no part of the library, which never imports them.
Importing ``rnncourse`` changes no setting of yours (environment, loggers, random state).
"""

__version__ = "0.1.0"
