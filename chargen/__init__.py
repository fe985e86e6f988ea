"""chargen: a reproducible character-level LSTM pipeline (DVC + Keras 3)."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (CPU instruction sets, a failed CUDA probe on CPU-only
# machines) is noise in stage logs; Python errors still show. Set the variable to override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
