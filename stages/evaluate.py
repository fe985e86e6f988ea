"""evaluate: held-out bits/char of models/best (static; as generate samples from it, mixed with the
n-gram model at generate's fixed weight; dynamic; and mixed online with an adaptive n-gram model)
beside gzip, bzip2, xz and PPMd -> metrics/eval.json."""

import math
import time
from functools import partial
from pathlib import Path

import numpy as np

from chargen.bundle import load_bundle
from chargen.dataset import decode, load_dataset
from chargen.evaluate import COMPRESSORS, bits_per_char, compressor_bpc, dynamic_probs, model_probs
from chargen.io import run_stage, write_json, write_text
from chargen.model import numpy_weights
from chargen.ngram import mix_bpc, ngram_probs
from chargen.numpy_lstm import StepLSTM
from chargen.params import load as read_params
from chargen.progress import ticker
from chargen.surprisal import surprisal_html

MODEL = Path("models/best")
DATASET = Path("data/prepared/dataset.npz")
METRICS = Path("metrics/eval.json")
RUN = Path("metrics/run/evaluate.json")  # timings: not an output DVC compares
HTML = Path("metrics/surprisal.html")  # the validation text coloured by surprisal (static model)
say = partial(print, flush=True)  # lines as they happen, also into a pipe (CI logs, dvc queue)


def main():
    params = read_params()
    cfg, sampler = params["evaluate"], params["generate"]
    model, vocab, _ = load_bundle(MODEL)
    ds = load_dataset(DATASET)
    val_ids = ds["val_ids"][:cfg["max_chars"] or None]  # every figure, the compressors' too, on this text
    targets = np.asarray(val_ids)[1:]
    n = len(targets)
    say(f"scoring {MODEL} on {n:,} held-out chars, read as one stream (the state carried)")
    t0 = time.perf_counter()
    probs = model_probs(StepLSTM(numpy_weights(model)), val_ids, ticker(n, "char", say))
    secs = time.perf_counter() - t0
    bpc = bits_per_char(probs, targets)
    run = {"val_chars": n, "held_out_chars": len(ds["val_ids"]), "scored_chars_per_second": round(n / secs, 1)}
    static = probs
    bits = -np.log2(np.maximum(probs[np.arange(n), targets], 1e-300))
    write_text(HTML, surprisal_html(decode(val_ids, vocab), np.concatenate([[np.nan], bits]),
                                    title="Surprisal of the validation text (models/best)"))
    dyn = {}
    if cfg["dynamic_lr"] > 0:
        segments = math.ceil(n / cfg["dynamic_segment"])
        say(f"dynamic evaluation: {segments:,} segments of {cfg['dynamic_segment']} chars, the model taking an "
            f"SGD step (evaluate.dynamic_lr {cfg['dynamic_lr']}) after scoring each")
        t0 = time.perf_counter()
        probs = dynamic_probs(model, val_ids, cfg["dynamic_lr"], cfg["dynamic_segment"],
                              ticker(segments, "segment", say))
        dyn = {"lstm_dynamic": round(bits_per_char(probs, targets), 4)}
        run["dynamic_seconds"] = round(time.perf_counter() - t0, 1)
    mix = {}
    if cfg["ngram_order"] > 0:  # mixed with the dynamic predictions when there are any
        say(f"mixing its predictions online with an adaptive {cfg['ngram_order']}-gram model")
        t0 = time.perf_counter()
        ngram = ngram_probs(ds["train_ids"], val_ids, cfg["ngram_order"], len(vocab))
        mix = {"lstm_mix": round(mix_bpc([probs, ngram], targets, cfg["mix_lr"]), 4),
               "ngram": round(bits_per_char(ngram, targets), 4)}
        run["mix_seconds"] = round(time.perf_counter() - t0, 1)
    sampled = {}
    if sampler["ngram_weight"] > 0:  # exactly what generate samples from, at temperature 1
        say(f"scoring what generate samples from: the model mixed with a {sampler['ngram_order']}-gram model "
            f"at weight {sampler['ngram_weight']}")
        t0 = time.perf_counter()
        w = sampler["ngram_weight"]
        ngram = ngram_probs(ds["train_ids"], val_ids, sampler["ngram_order"], len(vocab))
        sampled = {"lstm_ngram": round(bits_per_char((1 - w) * static + w * ngram, targets), 4)}
        run["sampler_seconds"] = round(time.perf_counter() - t0, 1)
    say(f"compressing the same text: {', '.join(COMPRESSORS)}")
    comp = compressor_bpc(decode(ds["train_ids"], vocab), decode(val_ids, vocab))
    result = {"lstm": round(bpc, 4), **sampled, **dyn, **mix, **comp}
    write_json(METRICS, result)
    write_json(RUN, run)
    print("  ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    run_stage(main)
