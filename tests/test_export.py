"""Exports (chargen.export) loaded by their own runtime alone, in a process that never imports
chargen (TensorFlow itself imports Keras; onnxruntime needs neither): the SavedModel with tf.saved_model.load, ONNX with onnxruntime. Their
next-character distributions must match the Keras model and the NumPy step, and their greedy
text the NumPy sampler's."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chargen import api, export, model, sampling
from conftest import env_with_venv
from test_api import VOCAB, random_bundle

STEPS = 300

# Runs in a fresh interpreter outside the repository: numpy and one runtime, nothing else.
RUNNER = r"""
import json, sys
import numpy as np
fmt, folder, out = sys.argv[1:]
cfg = json.load(open(f"{folder}/config.json"))
vocab = json.load(open(f"{folder}/vocab.json"))
if fmt == "savedmodel":
    import tensorflow as tf
    step_fn = tf.saved_model.load(f"{folder}/savedmodel").signatures["serving_default"]
    def step(ids, h, c):
        r = step_fn(ids=tf.constant(ids), h=tf.constant(h), c=tf.constant(c))
        return r["logits"].numpy(), r["new_h"].numpy(), r["new_c"].numpy()
else:
    import onnxruntime as ort
    sess = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    def step(ids, h, c):
        return sess.run(["logits", "new_h", "new_c"], {"ids": ids, "h": h, "c": c})
data = np.load(f"{out}/in.npz")
ids = data["ids"]  # (batch, steps): teacher-forced ids
zeros = np.zeros((cfg["layers"], ids.shape[0], cfg["units"]), "float32")
h, c, logits = zeros, zeros, []
for t in range(ids.shape[1]):
    lg, h, c = step(ids[:, t].astype("int32"), h, c)
    logits.append(lg)
# Greedy text after the prompt, the argmax fed back.
prompt = [vocab.index(ch) for ch in data["prompt"].item()]
h, c = zeros[:, :1], zeros[:, :1]
for i in prompt:
    lg, h, c = step(np.array([i], "int32"), h, c)
text = ""
for _ in range(int(data["length"])):
    nxt = int(lg[0].argmax())
    text += vocab[nxt]
    lg, h, c = step(np.array([nxt], "int32"), h, c)
np.savez(f"{out}/out.npz", logits=np.stack(logits, 1), text=text,
         loaded=sorted({m.split(".")[0] for m in sys.modules} & {"chargen", "keras", "tensorflow"}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    folder = random_bundle(base / "best", seed=2, layers=2, units=16)
    written = export.export(folder, base / "exports")
    assert set(written) == {"savedmodel", "onnx"}
    return folder, base / "exports"


def softmax(z):
    z = np.asarray(z, "float64")
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
def test_export_matches_keras_and_numpy_in_its_own_runtime(exported, fmt, tmp_path):
    folder, out = exported
    m = api.load(folder)
    ids = np.random.default_rng(1).integers(0, len(VOCAB), size=(3, STEPS))
    prompt, length = "the hare said", 200
    np.savez(tmp_path / "in.npz", ids=ids, prompt=prompt, length=length)
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    res = subprocess.run([sys.executable, str(script), fmt, str(out), str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, env=env_with_venv(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    # The export ran without chargen's code; ONNX without TensorFlow and Keras as well.
    assert list(got["loaded"]) == (["keras", "tensorflow"] if fmt == "savedmodel" else [])

    keras_logits = np.asarray(m.keras(ids.astype("int32"), training=False))
    state, numpy_logits = m.step.zero_state(3), []
    for t in range(STEPS):
        lg, state = m.step.step(ids[:, t], state)
        numpy_logits.append(lg)
    p = softmax(got["logits"])
    np.testing.assert_allclose(p, softmax(keras_logits), atol=1e-4)
    np.testing.assert_allclose(p, softmax(np.stack(numpy_logits, 1)), atol=1e-4)

    greedy = sampling.sample_stateful(m.step, m.encode(prompt)[None], length, temperature=0)
    assert str(got["text"]) == m.decode(greedy[0])
    # The exports are the LSTM alone: chargen's own sampling without the n-gram mixture.
    assert str(got["text"]) == m.generate(prompt, length=length, temperature=0, ngram_weight=0)[0]


def test_export_folder_and_errors(exported, tmp_path):
    folder, out = exported
    assert json.loads((out / "vocab.json").read_text()) == VOCAB
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["layers"] == 2 and cfg["units"] == 16 and cfg["lowercase"] is True
    assert (out / "savedmodel" / "saved_model.pb").is_file() and (out / "model.onnx").is_file()
    from chargen.io import ChargenError
    with pytest.raises(ChargenError, match="unknown export format"):
        export.export(folder, tmp_path / "x", ["tflite"])
    assert model.numpy_weights  # the export reads the weights through the same helper as StepLSTM
