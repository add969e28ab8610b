"""Which hardware TensorFlow sees, and the distribution strategy to use on it.

Nothing here pins the CPU: the same notebook runs unchanged on a GPU, where Keras' LSTM
and GRU layers use the fused cuDNN kernel when their settings allow it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from rnncourse import _checks
from rnncourse.config import quiet_tensorflow


@dataclass(frozen=True)
class Environment:
    """Versions and devices, as :func:`describe` finds them."""

    python: str
    tensorflow: str
    keras: str
    numpy: str
    gpus: tuple[str, ...]
    built_with_cuda: bool
    cuda_version: str | None
    cudnn_version: str | None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def rows(self) -> list[tuple[str, str]]:
        """``(item, value)`` pairs for a two-column table."""
        rows = [
            ("Python", self.python),
            ("TensorFlow", self.tensorflow),
            ("Keras", self.keras),
            ("NumPy", self.numpy),
            ("GPUs visible", ", ".join(self.gpus) if self.gpus else "none (CPU only)"),
            ("TensorFlow built with CUDA", "yes" if self.built_with_cuda else "no"),
            ("CUDA / cuDNN (build)", f"{self.cuda_version or '-'} / {self.cudnn_version or '-'}"),
        ]
        return rows + sorted(self.extra.items())


def gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use (empty on a CPU-only machine)."""
    quiet_tensorflow()
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def describe() -> Environment:
    """Collect versions, visible GPUs and the CUDA/cuDNN versions TensorFlow was built with."""
    quiet_tensorflow()
    import keras
    import numpy as np
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    return Environment(
        python=platform.python_version(),
        tensorflow=tf.__version__,
        keras=keras.__version__,
        numpy=np.__version__,
        gpus=tuple(gpus()),
        built_with_cuda=bool(build.get("is_cuda_build", False)),
        cuda_version=build.get("cuda_version"),
        cudnn_version=build.get("cudnn_version"),
    )


def strategy():
    """A ``tf.distribute`` strategy for the visible hardware.

    Several GPUs: ``MirroredStrategy`` (one model replica per GPU, gradients all-reduced).
    One GPU or none: the default strategy, which places work on the GPU when present.
    """
    quiet_tensorflow()
    import tensorflow as tf

    if len(gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def mask_layout(mask) -> tuple[bool, bool]:
    """``(right_padded, has_empty_row)`` for a ``(batch, timesteps)`` boolean mask.

    The two conditions Keras checks before running cuDNN: every row is
    ``True...True False...False``, and no row is all ``False``.
    """
    import numpy as np

    mask = _checks.array(mask, "mask", kinds="biuf").astype(bool)
    _checks.fail_if(mask.ndim != 2, "mask", f"must be (batch, timesteps), got shape {mask.shape}")
    lengths = mask.sum(axis=1)
    right_padded = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    return bool(np.array_equal(mask, right_padded)), bool((lengths == 0).any())


def cudnn_eligibility(layer, mask=None) -> tuple[bool, list[str]]:
    """Whether TensorFlow runs this Keras LSTM/GRU layer with the fused cuDNN kernel.

    The rules are those of Keras 3's TensorFlow backend (``keras/src/layers/rnn/lstm.py``,
    ``gru.py`` and ``keras/src/backend/tensorflow/rnn.py``, checked against Keras 3.15):
    the layer must be a ``keras.layers.LSTM`` or ``keras.layers.GRU`` (a generic
    ``keras.layers.RNN(LSTMCell(...))`` never is) with ``use_cudnn`` not ``False``,
    ``activation`` tanh, ``recurrent_activation`` sigmoid, ``recurrent_dropout == 0``,
    ``unroll=False``, ``use_bias=True`` and, for a GRU, ``reset_after=True``. Input
    ``dropout``, ``go_backwards``, ``stateful``, ``return_sequences`` and
    ``Bidirectional`` are all fine. A GPU must be visible too; that part is left to
    :func:`gpus`, so the answer is the same on a laptop and on the GPU box.

    A mask is not a setting: the cuDNN path checks it when the batch runs. A mask that is
    not right-padded (``[1, 1, 0, 0]`` is, ``[0, 0, 1, 1]`` is not) or that has a row with
    no real step stops the cuDNN step with an error instead of falling back. Pass the
    batch's ``mask`` (``(batch, timesteps)`` bool) to check it too.

    Args:
        layer: a Keras recurrent layer (``Bidirectional`` is unwrapped: both directions
            are checked).
        mask: optional ``(batch, timesteps)`` boolean mask, True on real steps.

    Returns:
        ``(eligible, reasons)``: ``reasons`` names every setting that rules cuDNN out,
        with the fix; empty when ``eligible``.
    """
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    if isinstance(layer, keras.layers.Bidirectional):
        ok_f, why_f = cudnn_eligibility(layer.forward_layer, mask)
        ok_b, why_b = cudnn_eligibility(layer.backward_layer, mask)
        reasons = list(dict.fromkeys(why_f + why_b))
        return ok_f and ok_b, reasons
    if not isinstance(layer, keras.layers.Layer):
        _checks.fail("layer", f"expected a Keras layer, got {type(layer).__name__}", TypeError)
    kind = type(layer)
    if kind not in (keras.layers.LSTM, keras.layers.GRU):
        return False, [f"{kind.__name__} has no cuDNN kernel: only keras.layers.LSTM and "
                       "keras.layers.GRU have one (a keras.layers.RNN wrapping an LSTMCell "
                       "or GRUCell always runs the generic loop)"]
    tanh = (keras.activations.tanh, keras.ops.tanh, tf.tanh)
    sigmoid = (keras.activations.sigmoid, keras.ops.sigmoid, tf.sigmoid)
    cell = layer.cell
    reasons = []
    if layer.use_cudnn is False:
        reasons.append("use_cudnn=False: use use_cudnn='auto'")
    if cell.activation not in tanh:
        name = getattr(cell.activation, "__name__", repr(cell.activation))
        reasons.append(f"activation={name!r}: only 'tanh' runs on cuDNN")
    if cell.recurrent_activation not in sigmoid:
        name = getattr(cell.recurrent_activation, "__name__", repr(cell.recurrent_activation))
        reasons.append(f"recurrent_activation={name!r}: only 'sigmoid' runs on cuDNN")
    if cell.recurrent_dropout:
        reasons.append(f"recurrent_dropout={cell.recurrent_dropout}: use 0 (input "
                       "`dropout` or a Dropout layer between layers is fine)")
    if layer.unroll:
        reasons.append("unroll=True: use unroll=False")
    if not cell.use_bias:
        reasons.append("use_bias=False: use use_bias=True")
    if kind is keras.layers.GRU and not cell.reset_after:
        reasons.append("reset_after=False: cuDNN's GRU applies the reset gate after the "
                       "matrix product; use reset_after=True")
    if mask is not None:
        right_padded, has_empty_row = mask_layout(mask)
        if not right_padded:
            reasons.append("mask is not right-padded: pad at the end "
                           "(keras.utils.pad_sequences(..., padding='post')) or pass "
                           "use_cudnn=False; with cuDNN this mask raises an error")
        if has_empty_row:
            reasons.append("mask has a row with no real step: drop empty sequences; with "
                           "cuDNN this mask raises an error")
    return not reasons, reasons


def will_use_cudnn(layer, mask=None) -> bool:
    """True when a GPU is visible and :func:`cudnn_eligibility` finds nothing in the way."""
    return bool(gpus()) and cudnn_eligibility(layer, mask)[0]
