"""The Keras model: built from params with the functional API; what users get has built-in layers only.

Input modes are all Embedding layers, so models load in Keras safe mode with no custom code:
`embedding` is learned; `onehot` is a frozen identity matrix; `scaled` is a frozen column of
id / vocab_size (the tutorial's single float feature per character).

The model being trained uses chargen's LSTM, Keras' LSTM arranged to run faster on a CPU; its
checkpoints load through chargen (which registers the class). The models users get (select's
bundle, the stateful copy) have Keras' own LSTM layers.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from chargen.io import ChargenError
from chargen.params import UNROLL_MAX  # chargen's LSTM unrolls windows up to this many steps
from chargen.quiet import keras

layers = keras.layers

LN2 = math.log(2.0)


def input_matrix(mode: str, vocab_size: int) -> np.ndarray | None:
    if mode == "onehot":
        return np.eye(vocab_size, dtype="float32")
    if mode == "scaled":
        return (np.arange(vocab_size, dtype="float32") / vocab_size)[:, None]
    return None




def gpu_visible() -> bool:
    """Whether TensorFlow computes on a GPU (where Keras' LSTM runs cuDNN's kernel)."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="chargen")
class LSTM(layers.LSTM):
    """keras.layers.LSTM with the same weights and the same arithmetic, arranged for a CPU. Its
    name is Keras' class name because Keras addresses weights in a weights file by class name:
    the two layers' files are the same layout and load into each other.

    Keras' LSTM runs a loop whose every step multiplies both the step's input and the state by
    their kernels: two small products. Here, on a window of known length up to UNROLL_MAX, the
    input half runs first as one product over the whole window (large-matrix speed), and the
    loop is unrolled, so each step only multiplies the state by the recurrent kernel and the
    graph has no while loop. On a GPU, on another backend than TensorFlow (JAX ran it slower
    than its own loop), or for what this path does not cover (masks, dropout inside the cell,
    longer or unknown lengths), it runs Keras' own loop, so a GPU keeps cuDNN.

    `weight_drop` (train.weight_drop) is AWD-LSTM's DropConnect on the recurrent kernel: while
    training, each call (one batch) zeroes that share of the hidden-to-hidden weights, one mask
    for every row and step, and scales the rest up to keep their sum. The state path is
    regularised without a per-step mask, so steps stay plain matrix products. It runs this
    layer's unrolled loop on every device and backend.
    """

    def __init__(self, *args, weight_drop: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_drop = float(weight_drop)

    def get_config(self):
        return {**super().get_config(), "weight_drop": self.weight_drop}

    def _window_path(self, sequences, mask) -> bool:
        steps = sequences.shape[1]
        cell = self.cell
        fits = (steps is not None and steps <= UNROLL_MAX and mask is None and not self.go_backwards
                and not cell.dropout and not cell.recurrent_dropout and cell.use_bias)
        if self.weight_drop and steps is not None and not fits:  # None: Keras building the graph
            raise ChargenError(f"train.weight_drop needs windows of at most {UNROLL_MAX} characters (got "
                               f"{steps}); lower prepare.seq_length or set train.weight_drop: 0")
        return fits and (self.weight_drop or (keras.config.backend() == "tensorflow" and not gpu_visible()))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._window_path(sequences, mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        ops, cell = keras.ops, self.cell
        recurrent = cell.recurrent_kernel
        if training and self.weight_drop:
            recurrent = keras.random.dropout(recurrent, self.weight_drop, seed=cell.seed_generator)
        inputs = ops.unstack(ops.matmul(sequences, cell.kernel), axis=1)  # one product, then per step
        h, c = initial_state
        outputs = []
        for x in inputs:  # Keras' order: (x.kernel + h.recurrent_kernel) + bias
            z = ops.add(ops.add(x, ops.matmul(h, recurrent)), cell.bias)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            c = cell.recurrent_activation(z_f) * c + cell.recurrent_activation(z_i) * cell.activation(z_c)
            h = cell.recurrent_activation(z_o) * cell.activation(c)
            outputs.append(h)
        sequence = ops.stack(outputs, axis=1) if self.return_sequences else ops.expand_dims(h, 1)
        return h, sequence, [h, c]


def build(vocab_size: int, cfg: dict, stateful_batch: int = 0, for_training: bool = False) -> keras.Model:
    """LSTM stack from the train params: layers x LSTM(units) + Dropout, then Dense logits.

    With `stateful_batch` the LSTMs carry their state from call to call over that many rows
    (training on streams); the weights are the same as the stateless model's. `for_training`: the
    LSTMs are chargen's LSTM (faster on a CPU, the same numbers; loads through chargen), else Keras'
    own LSTM (a model that loads with Keras alone).
    """
    lstm = LSTM if for_training else layers.LSTM
    extra = {"weight_drop": cfg["weight_drop"]} if for_training and cfg.get("weight_drop") else {}
    fixed = input_matrix(cfg["input"], vocab_size)
    if stateful_batch:
        ids = keras.Input(batch_shape=(stateful_batch, None), dtype="int32", name="ids")
    else:
        ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    if fixed is None:
        x = layers.Embedding(vocab_size, cfg["embedding_dim"], name="embed")(ids)
    else:
        embed = layers.Embedding(vocab_size, fixed.shape[1], trainable=False, name="embed")
        x = embed(ids)
        embed.set_weights([fixed])
    for i in range(cfg["layers"]):
        keep_sequence = cfg["objective"] == "sequence" or i < cfg["layers"] - 1
        # Default activations and no recurrent dropout keep the layer cuDNN-eligible on a GPU.
        x = lstm(cfg["units"], return_sequences=keep_sequence, stateful=bool(stateful_batch), name=f"lstm{i}",
                 **extra)(x)
        if cfg["dropout"] > 0:
            x = layers.Dropout(cfg["dropout"], name=f"drop{i}")(x)
    logits = layers.Dense(vocab_size, dtype="float32", name="logits")(x)
    return keras.Model(ids, logits, name="chargen_lstm")


def stateful_copy(model: keras.Model) -> keras.Model:
    """The same network for one stream that carries its LSTM state from call to call, without
    dropout (for scoring), holding a copy of `model`'s weights."""
    lstms = [layer for layer in model.layers if isinstance(layer, layers.LSTM)]
    embed = model.get_layer("embed")
    ids = keras.Input(batch_shape=(1, None), dtype="int32", name="ids")
    x = layers.Embedding(embed.input_dim, embed.output_dim, trainable=embed.trainable, name="embed")(ids)
    for i, layer in enumerate(lstms):
        x = layers.LSTM(layer.units, return_sequences=True, stateful=True, name=f"lstm{i}")(x)
    logits = layers.Dense(model.output_shape[-1], dtype="float32", name="logits")(x)
    copy = keras.Model(ids, logits, name="chargen_lstm_stateful")
    for layer in [embed, *lstms, model.get_layer("logits")]:
        copy.get_layer(layer.name).set_weights(layer.get_weights())
    return copy


def compile_model(model: keras.Model, cfg: dict, steps_per_epoch: int) -> None:
    lr = cfg["learning_rate"]
    if cfg["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, cfg["epochs"] * steps_per_epoch), alpha=0.02
        )
    # Named, not auto-named ("adam_1" for a second model in one process): the name is saved in
    # the .keras file, whose bytes must not depend on what else the process built.
    opt = keras.optimizers.Adam(learning_rate=lr, clipnorm=cfg["clipnorm"] or None, name="adam")
    model.compile(
        optimizer=opt,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _renumber_shared_objects(node, ids: dict):
    """Keras writes `shared_object_id` as Python's id() of the object, a memory address; number
    them in order of appearance instead (the same sharing, the same bytes every time).

    A dtype policy is a value, yet a built model shares one policy object between layers and a
    loaded one does not: its sharing is dropped, so a resumed run saves the bytes an
    uninterrupted one saves."""
    if isinstance(node, dict):
        if str(node.get("class_name", "")).endswith("DTypePolicy"):
            node = {k: v for k, v in node.items() if k != "shared_object_id"}
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _renumber_shared_objects(v, ids))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_objects(v, ids) for v in node]
    return node


def save_model(model: keras.Model, path) -> None:
    """`model.save`, then the .keras zip rewritten without what changes from save to save (the
    date in metadata.json, memory addresses in config.json, the members' timestamps), so the same
    model always gives the same bytes and DVC sees an unchanged output as unchanged. The weights
    file inside is already identical for identical weights."""
    model.save(path)
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in members:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            dst.writestr(fixed, data)


def load_model(path, compile: bool = False, fix: str = "re-run the stage that wrote it") -> keras.Model:
    """Load a .keras file in safe mode (no Lambda layers, no pickled code). A file that cannot be
    loaded is a one-line ChargenError saying why (missing, corrupt, holding code) and `fix`."""
    path = Path(path)
    if not path.is_file():
        raise ChargenError(f"{path} does not exist: {fix}")
    if not zipfile.is_zipfile(path):
        raise ChargenError(f"{path} is corrupt or truncated (not a .keras zip file): {fix}")
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file
        text = " ".join(str(exc).split())
        if "arbitrary code execution" in text or "safe_mode" in text:
            raise ChargenError(f"{path} holds Python code (a Lambda layer or function), which safe mode "
                               f"refuses to load because loading would run it; use a model written by "
                               f"chargen: {fix}") from None
        first = text.split(". ")[0] if text else type(exc).__name__
        # A zip whose members are damaged (a bad checksum, a config that is not JSON) is corrupt;
        # anything else (say, a model of another Keras) is said as Keras says it.
        damaged = isinstance(exc, (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, EOFError))
        raise ChargenError(f"{path} {'is corrupt' if damaged else 'cannot be loaded'} "
                           f"({type(exc).__name__}: {first}): {fix}") from None


def numpy_weights(model: keras.Model) -> dict:
    """The weights a NumPy step function needs, by layer: embed, [(kernel, recurrent, bias)], dense."""
    get = model.get_layer
    lstms = [layer for layer in model.layers if isinstance(layer, layers.LSTM)]
    return {
        "embed": np.asarray(get("embed").get_weights()[0], dtype="float32"),
        "lstm": [tuple(np.asarray(w, dtype="float32") for w in layer.get_weights()) for layer in lstms],
        "dense": tuple(np.asarray(w, dtype="float32") for w in get("logits").get_weights()),
    }


def param_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
