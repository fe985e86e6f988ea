"""train.strategy: one device, MirroredStrategy (the GPUs, or the logical CPUs, of one machine) or
MultiWorkerMirroredStrategy (several processes or hosts, described by TF_CONFIG).

These are TensorFlow's engines (tf.distribute), so they need the TensorFlow backend. The global
batch (train.batch_size) is split over the replicas and their gradients are summed, so a run
with the same global batch follows the same trajectory as on one device, up to float rounding.
"""

from __future__ import annotations

import contextlib
import json
import os
import types

from chargen.io import ChargenError
from chargen.quiet import keras


class Single:
    """No tf.distribute: whatever device the backend picks (a GPU if there is one)."""

    name, replicas, chief = "single", 1, True

    def scope(self):
        return contextlib.nullcontext()

    def fitting(self, model):
        """The context `model.fit` runs in."""
        return contextlib.nullcontext()


class Distributed:
    def __init__(self, name: str, strategy, chief: bool):
        self.name, self.strategy, self.chief = name, strategy, chief
        self.replicas = strategy.num_replicas_in_sync

    def scope(self):
        return self.strategy.scope()

    def fitting(self, model):
        """The context `model.fit` runs in: with the multi-worker workaround in place, for this
        strategy only, and put back afterwards."""
        if self.name == "multiworker":
            return multiworker_workaround(model, self.strategy)
        return contextlib.nullcontext()


def is_chief(tf_config: dict) -> bool:
    """The task that writes files: `chief` if the cluster has one, else worker 0."""
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def strategy_for(cfg: dict):
    name = cfg["strategy"]
    if name == "single":
        return Single()
    if keras.config.backend() != "tensorflow":
        raise ChargenError(f"train.strategy = {name} uses tf.distribute, which needs the TensorFlow backend "
                           f"(KERAS_BACKEND is {keras.config.backend()}); use train.strategy: single")
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        found = Distributed(name, tf.distribute.MirroredStrategy([d.name for d in devices]), chief=True)
    else:
        raw = os.environ.get("TF_CONFIG", "")
        try:
            tf_config = json.loads(raw)
            workers = tf_config["cluster"]["worker"]
        except (ValueError, KeyError, TypeError):
            raise ChargenError("train.strategy = multiworker needs TF_CONFIG, e.g. {\"cluster\": {\"worker\": "
                               "[\"host1:port\", \"host2:port\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}, "
                               "set on every host (README: several hosts)") from None
        if not workers:
            raise ChargenError("TF_CONFIG lists no workers")
        check_keras_for_multiworker()
        found = Distributed(name, tf.distribute.MultiWorkerMirroredStrategy(), chief=is_chief(tf_config))
    if cfg["batch_size"] % found.replicas:
        raise ChargenError(f"train.batch_size = {cfg['batch_size']} does not split evenly over "
                           f"{found.replicas} replicas; use a multiple of {found.replicas}")
    return found


# The Keras versions the multi-worker workaround was tested with (tests/test_distribute.py trains
# two workers for real). It replaces private Keras internals, so any other version is refused.
MULTIWORKER_TESTED_KERAS = ("3.15.1",)


def check_keras_for_multiworker() -> None:
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if keras.__version__ not in MULTIWORKER_TESTED_KERAS or not (
            hasattr(tf_trainer, "reduce_per_replica")
            and hasattr(tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build")):
        raise ChargenError(f"train.strategy = multiworker needs a workaround tested with Keras "
                           f"{', '.join(MULTIWORKER_TESTED_KERAS)} only, and this is Keras {keras.__version__}; "
                           f"install keras=={MULTIWORKER_TESTED_KERAS[-1]} (requirements.txt) or use "
                           f"train.strategy: mirrored")


@contextlib.contextmanager
def multiworker_workaround(model, strategy):
    """Work around two Keras 3 defects under MultiWorkerMirroredStrategy while `fit` runs
    (keras-team/keras#20585, open; no public API replaces this: keras.distribution is JAX-only):

    1. Before the first step `fit` reduces one sample batch across workers only to learn its
       shapes; that reduce of an (inputs, targets) pair fails. The local replica's part of the
       batch has the same shapes, so it is used instead (on this model instance only).
    2. The step's logs (scalar losses) are reduced with `axis=0`, which fails on scalars; they
       are reduced across workers as scalars instead (arrays still along axis 0), for this
       strategy only.
    Both are put back when the block ends, even on an error. Checked by tests/test_distribute.py,
    which trains two workers for real; `check_keras_for_multiworker` refuses untested versions.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    check_keras_for_multiworker()

    def symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], batch)
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strat, reduction):
        if not isinstance(strat, tf.distribute.MultiWorkerMirroredStrategy) or reduction not in ("auto", "mean"):
            return original(values, strat, reduction)

        def mean(v):
            local = strat.experimental_local_results(v)[0] if hasattr(v, "values") else v
            return strat.reduce("MEAN", v, axis=0 if local.shape.rank else None)

        return tf.nest.map_structure(mean, values)

    model._maybe_symbolic_build = types.MethodType(symbolic_build, model)
    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
        del model._maybe_symbolic_build  # the class's own method again
