"""Export a model folder to formats that run without chargen: a TensorFlow SavedModel and ONNX,
each a single step with explicit state, with vocab.json and config.json beside them.

    python -m chargen.export --model models/best --out exports

A command a user runs, not a DVC stage: exporting is a deployment step taken from a model that
is already versioned (the `chargen-model` artifact, models/best), and it needs tf2onnx and ONNX,
which training does not. As a stage it would put those packages and minutes of conversion in
every `dvc repro`. Re-running it on the same models/best gives the same networks.

Both exports have one signature, `step`: inputs `ids` int32 (batch,), `h` and `c` float32
(layers, batch, units), zeros to start; outputs `logits` (batch, vocab) for the next character
and `new_h`, `new_c` to feed back. Feed a prompt one character at a time, then sample.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chargen.bundle import load_bundle, read_config
from chargen.io import ChargenError, atomic_path, run_stage

FORMATS = ("savedmodel", "onnx")
ONNX_OPSET = 17


def step_module(model):
    """A tf.Module whose `step` is the Keras LSTM cell (gates i, f, c, o) written in plain TF
    ops, so the SavedModel needs no Keras and converts to ONNX op by op."""
    from chargen.model import numpy_weights  # first: it imports TensorFlow with its start-up lines hidden

    import tensorflow as tf

    w = numpy_weights(model)
    units = {rk.shape[0] for _, rk, _ in w["lstm"]}
    if len(units) != 1:
        raise ChargenError("export needs every LSTM layer the same width (train.units)")
    n_layers, u = len(w["lstm"]), units.pop()
    state_spec = tf.TensorSpec([n_layers, None, u], tf.float32)

    class Step(tf.Module):
        def __init__(self):
            super().__init__(name="chargen_step")
            self.embed = tf.Variable(w["embed"], trainable=False, name="embed")
            self.lstm = [[tf.Variable(a, trainable=False, name=f"lstm{n}_{k}") for k, a in zip("krb", t)]
                         for n, t in enumerate(w["lstm"])]
            self.dense_w, self.dense_b = (tf.Variable(a, trainable=False, name=f"logits_{k}")
                                          for k, a in zip("wb", w["dense"]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids"),
                                      tf.TensorSpec.from_spec(state_spec, name="h"),
                                      tf.TensorSpec.from_spec(state_spec, name="c")])
        def step(self, ids, h, c):
            x = tf.gather(self.embed, ids)
            hs, cs = [], []
            for n, (kernel, recurrent, bias) in enumerate(self.lstm):
                i, f, g, o = tf.split(tf.matmul(x, kernel) + tf.matmul(h[n], recurrent) + bias, 4, axis=1)
                c_new = tf.sigmoid(f) * c[n] + tf.sigmoid(i) * tf.tanh(g)
                x = tf.sigmoid(o) * tf.tanh(c_new)
                hs.append(x)
                cs.append(c_new)
            return {"logits": tf.matmul(x, self.dense_w) + self.dense_b,
                    "new_h": tf.stack(hs), "new_c": tf.stack(cs)}

    return Step(), n_layers, u


def export(model_dir, out, formats=FORMATS) -> dict:
    """Write the chosen formats into `out` (replaced whole); returns {name: path written}."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ChargenError(f"unknown export format(s) {sorted(unknown)}: choose from {', '.join(FORMATS)}")
    read_config(model_dir)  # a missing model is refused before TensorFlow is imported (seconds)
    import chargen.quiet  # noqa: F401  (TensorFlow, imported with its C++ start-up lines kept off stderr)
    import tensorflow as tf

    model, vocab, config = load_bundle(model_dir)
    module, n_layers, units = step_module(model)
    written = {}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        meta = {"layers": n_layers, "units": units, "vocab_size": len(vocab),
                "lowercase": config.get("lowercase", False), "fold_typography": config.get("fold_typography", False),
                "signature": "step(ids[int32 batch], h, c [float32 layers x batch x units]) -> logits, new_h, new_c"}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        if "savedmodel" in formats:
            tf.saved_model.save(module, str(tmp / "savedmodel"), signatures={"serving_default": module.step})
            written["savedmodel"] = Path(out) / "savedmodel"
        if "onnx" in formats:
            try:
                import tf2onnx
            except ImportError:
                raise ChargenError("ONNX export needs tf2onnx: pip install tf2onnx==1.17.0 onnx==1.23.2") from None
            tf2onnx.convert.from_function(module.step, input_signature=module.step.input_signature,
                                          opset=ONNX_OPSET, output_path=str(tmp / "model.onnx"))
            written["onnx"] = Path(out) / "model.onnx"
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m chargen.export", description=__doc__.split("\n\n")[0].replace("\n", " "),
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="models/best", help="a model folder written by the select stage")
    ap.add_argument("--out", default="exports", help="folder to write (replaced whole)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = ap.parse_args(argv)
    for name, path in export(args.model, args.out, [f for f in args.formats.split(",") if f]).items():
        size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() \
            else Path(path).stat().st_size
        print(f"{name}: {path} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    run_stage(main)
