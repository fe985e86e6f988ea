"""Import Keras (and so TensorFlow) with TensorFlow's C++ start-up lines kept off stderr.

TensorFlow prints lines such as "Could not find cuda drivers" from C++ before its logging is
configured, where TF_CPP_MIN_LOG_LEVEL cannot reach them; they would bury a stage's one-line
error. Python exceptions raised during the import still propagate as usual.
"""

import os
import sys


def _import_keras():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


keras = _import_keras()
