"""Characters per second of generation: the tutorial's window method vs the stateful sampler,
alone and mixed with the n-gram model as the generate stage samples by default.

    python bench/generate_speed.py [--model models/best]

Uses models/best when it exists, else a randomly initialised model of the default shape (speed
does not depend on the weights). The stateful rows keep the fastest of --repeat runs (the
tutorial's rows are too slow to repeat). Prints one table; the README quotes it.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

from chargen import params  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/best")
    ap.add_argument("--tutorial-chars", type=int, default=30)
    ap.add_argument("--window-chars", type=int, default=100)
    ap.add_argument("--stateful-chars", type=int, default=5000)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of the stateful sampler; the fastest counts")
    args = ap.parse_args()

    from chargen import sampling
    from chargen.model import build, numpy_weights
    from chargen.ngram import MixedStep, TrainCounts
    from chargen.numpy_lstm import StepLSTM

    if (Path(args.model) / "model.keras").is_file():
        from chargen.bundle import load_bundle, load_train_ids
        model, vocab, config = load_bundle(args.model)
        source = args.model
        train_ids = load_train_ids(args.model)
    else:
        cfg = params.load()["train"]
        model, vocab = build(46, cfg), list(range(46))
        source = f"random weights, {cfg['layers']}x{cfg['units']}"
        train_ids = np.random.default_rng(0).integers(0, 46, 130_000)  # an Alice-sized text
    T = 100  # the tutorial's window
    step = StepLSTM(numpy_weights(model))
    gen = params.load()["generate"]  # the default sampler: the LSTM mixed with the n-gram model
    mixed = MixedStep(step, TrainCounts(train_ids, gen["ngram_order"], len(vocab)), gen["ngram_weight"])
    prompt = np.random.default_rng(0).integers(0, len(vocab), size=(1, T))
    kw = dict(temperature=0.8, seed=1)

    def rate(fn, n_chars, streams=1, repeat=1):
        fn(2)  # warm-up
        best = float("inf")
        for _ in range(repeat):  # the fastest of a few: a shared or virtual machine adds noise, never speed
            t = time.perf_counter()
            fn(n_chars)
            best = min(best, time.perf_counter() - t)
        return n_chars * streams / best

    def window(n):
        return sampling.sample_window(model, prompt, n, T, **kw)

    def tutorial(n):  # the tutorial's loop as written: model.predict per character, argmax
        ctx = prompt[0].tolist()
        for _ in range(n):
            p = model.predict(np.array([ctx[-T:]], dtype="int32"), verbose=0)
            ctx.append(int(np.argmax(p[0, -1] if p.ndim == 3 else p[0])))

    def single(n):
        return sampling.sample_stateful(step, prompt, n, **kw)

    def many(n):
        return sampling.sample_stateful(step, np.repeat(prompt, args.streams, 0), n, **kw)

    def single_mixed(n):
        return sampling.sample_stateful(mixed, prompt, n, **kw)

    def many_mixed(n):
        return sampling.sample_stateful(mixed, np.repeat(prompt, args.streams, 0), n, **kw)

    r_tutorial = rate(tutorial, args.tutorial_chars)
    r_window = rate(window, args.window_chars)
    r_single = rate(single, args.stateful_chars, repeat=args.repeat)
    r_many = rate(many, args.stateful_chars // 5, args.streams, repeat=args.repeat)
    r_single_mixed = rate(single_mixed, args.stateful_chars, repeat=args.repeat)
    r_many_mixed = rate(many_mixed, args.stateful_chars // 5, args.streams, repeat=args.repeat)
    print(f"model: {source}")
    print("| method | chars/s | vs tutorial | vs window |")
    print("| --- | ---: | ---: | ---: |")
    rows = [("tutorial as written: model.predict per char", r_tutorial),
            ("window re-feed (method: window), 1 stream", r_window),
            ("stateful, 1 stream", r_single), (f"stateful, {args.streams} streams", r_many),
            (f"stateful + {gen['ngram_order']}-gram (the default sampler), 1 stream", r_single_mixed),
            (f"stateful + {gen['ngram_order']}-gram, {args.streams} streams", r_many_mixed)]
    def ratio(x):
        return f"{x:,.0f}x" if x >= 10 else f"{x:.1f}x"

    for name, r in rows:
        print(f"| {name} | {r:,.0f} | {ratio(r / r_tutorial)} | {ratio(r / r_window)} |")


if __name__ == "__main__":
    main()
