"""chargen's LSTM (the layer the model being trained uses): Keras' LSTM's numbers, arranged for
a CPU, Keras' own loop on a GPU; the models users get keep Keras' layers."""

import zipfile

import numpy as np
import pytest

from chargen import model as model_lib
from chargen.batches import Batches
from chargen.model import build, compile_model, load_model, save_model
from chargen.quiet import keras

CFG = dict(objective="sequence", input="embedding", embedding_dim=8, layers=2, units=16, dropout=0.3,
           batch_size=8, epochs=1, learning_rate=0.01, lr_schedule="constant", clipnorm=1.0)
VOCAB = 20


def twins(cfg=CFG, stateful_batch=0):
    """Keras' model and the training model, holding the same weights."""
    keras.utils.set_random_seed(1)
    plain = build(VOCAB, cfg, stateful_batch=stateful_batch)
    fast = build(VOCAB, cfg, stateful_batch=stateful_batch, for_training=True)
    fast.set_weights(plain.get_weights())
    return plain, fast


def ids(shape, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=shape).astype("int32")


@pytest.mark.parametrize("objective", ["sequence", "last"])
def test_the_training_layer_computes_what_keras_lstm_computes(objective):
    plain, fast = twins(dict(CFG, objective=objective))
    assert all(type(layer) is keras.layers.LSTM for layer in plain.layers if isinstance(layer, keras.layers.LSTM))
    assert sum(type(layer) is model_lib.LSTM for layer in fast.layers) == 2
    x = ids((4, 12))
    np.testing.assert_allclose(fast(x), plain(x), rtol=0, atol=1e-6)


def test_a_stateful_training_layer_carries_its_state_like_keras_lstm():
    plain, fast = twins(stateful_batch=4)
    for seed in (0, 1):  # the second call goes on from the state the first left
        x = ids((4, 10), seed)
        np.testing.assert_allclose(fast(x), plain(x), rtol=0, atol=1e-6)


def test_one_epoch_trains_to_the_same_loss_and_weights(tmp_path):
    """The same math: the same loss to float tolerance, weights within rounding (the kernel's
    gradient is summed in another order)."""
    text_ids = ids((3000,), 5)
    batches = Batches(text_ids, 12, 12, CFG["batch_size"], "sequence", seed=0, steps=12)
    results = []
    for for_training in (False, True):
        keras.utils.set_random_seed(3)
        m = build(VOCAB, CFG, for_training=for_training)
        compile_model(m, CFG, len(batches))
        loss = m.fit(batches, epochs=1, verbose=0, shuffle=False).history["loss"][0]
        results.append((loss, m.get_weights()))
    (loss_a, w_a), (loss_b, w_b) = results
    assert abs(loss_a - loss_b) < 1e-5
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_a_training_checkpoint_loads_through_chargen_and_its_weights_fit_keras_model(tmp_path):
    plain, fast = twins()
    save_model(fast, tmp_path / "resume.keras")
    loaded = load_model(tmp_path / "resume.keras")
    assert sum(type(layer) is model_lib.LSTM for layer in loaded.layers) == 2
    x = ids((2, 12))
    np.testing.assert_array_equal(loaded(x), fast(x))
    # Select loads the training run's weights files into Keras' model: the same layout.
    fast.save_weights(tmp_path / "epoch.weights.h5")
    keras.utils.set_random_seed(9)
    other = build(VOCAB, CFG)
    other.load_weights(tmp_path / "epoch.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(other.get_weights(), fast.get_weights()))
    # The model users get names Keras' layers only, so Keras alone loads it.
    save_model(other, tmp_path / "model.keras")
    config = zipfile.ZipFile(tmp_path / "model.keras").read("config.json").decode()
    assert '"module": "chargen' not in config and '"module": "keras.layers"' in config


def keras_loop_runs(monkeypatch, length, gpu) -> int:
    """How many of the training model's LSTM layers ran Keras' own loop (where Keras tries
    cuDNN) in a call on windows of `length`; the output is Keras' LSTM's either way."""
    plain, fast = twins()
    runs = []
    keras_loop = keras.layers.LSTM.inner_loop

    def spy(self, *args, **kwargs):
        runs.append(type(self))
        return keras_loop(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.LSTM, "inner_loop", spy)
    monkeypatch.setattr(model_lib, "gpu_visible", lambda: gpu)
    x = ids((2, length))
    np.testing.assert_allclose(fast(x), plain(x), rtol=0, atol=1e-6)
    return runs.count(model_lib.LSTM)


def test_a_gpu_keeps_keras_loop_and_so_cudnn(monkeypatch):
    assert keras_loop_runs(monkeypatch, 12, gpu=True) == 2


def test_a_cpu_runs_windows_up_to_unroll_max_itself(monkeypatch):
    assert keras_loop_runs(monkeypatch, 12, gpu=False) == 0
    assert keras_loop_runs(monkeypatch, model_lib.UNROLL_MAX + 1, gpu=False) == 2


def weight_dropped_layer(seed=4):
    """A training-model LSTM with weight_drop 0.5, and the Keras LSTM holding its weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(10, 6))
    layer = model_lib.LSTM(8, return_sequences=True, weight_drop=0.5)
    keras.Model(inputs, layer(inputs))
    plain = keras.layers.LSTM(8, return_sequences=True)
    plain.build((None, 10, 6))
    plain.set_weights(layer.get_weights())
    return layer, plain


def test_weight_drop_masks_the_recurrent_weights_once_per_batch():
    layer, plain = weight_dropped_layer()
    x = np.repeat(np.random.default_rng(0).normal(size=(1, 10, 6)).astype("float32"), 4, axis=0)
    first, second = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    # One mask for the batch: identical rows stay identical (a per-row mask would split them)...
    np.testing.assert_array_equal(first, np.broadcast_to(first[:1], first.shape))
    # ...a new mask for the next batch, and none when not training: Keras' LSTM exactly.
    assert not np.allclose(first, second)
    np.testing.assert_allclose(layer(x, training=False), plain(x), rtol=0, atol=1e-6)
    # Only the hidden-to-hidden weights are dropped: without them, training changes nothing.
    kernel, recurrent, bias = layer.get_weights()
    layer.set_weights([kernel, np.zeros_like(recurrent), bias])
    np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), rtol=0, atol=1e-6)


def test_weight_drop_is_saved_with_the_training_model_and_absent_from_the_users_model(tmp_path):
    cfg = dict(CFG, weight_drop=0.25)
    fast = build(VOCAB, cfg, for_training=True)
    save_model(fast, tmp_path / "resume.keras")
    assert [layer.weight_drop for layer in load_model(tmp_path / "resume.keras").layers
            if isinstance(layer, model_lib.LSTM)] == [0.25, 0.25]
    plain = build(VOCAB, cfg)
    save_model(plain, tmp_path / "model.keras")
    assert "weight_drop" not in zipfile.ZipFile(tmp_path / "model.keras").read("config.json").decode()


def test_weight_drop_refuses_windows_it_cannot_unroll():
    fast = build(VOCAB, dict(CFG, weight_drop=0.25), for_training=True)
    with pytest.raises(model_lib.ChargenError, match="lower prepare.seq_length"):
        fast(ids((2, model_lib.UNROLL_MAX + 1)), training=True)
