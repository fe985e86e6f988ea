"""Generating text from a selected model, for the generate stage and from the command line.

    python -m chargen.generate --model models/best --prompt "alice was" --temperature 0.7 --length 300
    python -m chargen.generate --model models/best --interactive
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from chargen.bundle import load_bundle
from chargen.cleaning import normalise
from chargen.dataset import decode, encode
from chargen.io import ChargenError, run_stage
from chargen.model import numpy_weights
from chargen.numpy_lstm import StepLSTM
from chargen.sampling import sample_stateful, sample_window


class Generator:
    """A loaded model ready to sample: the NumPy step function plus the Keras model for `window`."""

    def __init__(self, model_dir):
        self.model, self.vocab, self.config = load_bundle(model_dir)
        self.step = StepLSTM(numpy_weights(self.model))
        self.seq_length = self.config["seq_length"]

    def encode_prompt(self, prompt: str) -> np.ndarray:
        text = normalise(prompt, self.config.get("lowercase", False), self.config.get("fold_typography", False))
        bad = sorted(set(text) - set(self.vocab))
        if bad:
            raise ChargenError(
                f"prompt has character(s) outside the model's vocabulary: {', '.join(repr(c) for c in bad)}; "
                f"remove them (the vocabulary has {len(self.vocab)} characters)"
            )
        if not text:
            raise ChargenError("prompt is empty: give at least one character")
        return encode(text, self.vocab).astype(np.int64)

    def sample(self, prompts: np.ndarray, *, length: int, temperature: float, top_k: int = 0,
               top_p: float = 1.0, seed: int = 0, method: str = "stateful") -> list[str]:
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        if method == "window":
            ids = sample_window(self.model, prompts, length, self.seq_length, **kw)
        else:
            ids = sample_stateful(self.step, prompts, length, **kw)
        return [decode(row, self.vocab) for row in ids]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m chargen.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/best", help="a folder written by the select stage")
    ap.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    ap.add_argument("--prompt-file", help="read the prompt from this UTF-8 file")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=["stateful", "window"], default="stateful")
    ap.add_argument("--interactive", action="store_true", help="read prompts line by line from stdin")
    args = ap.parse_args(argv)
    if args.temperature < 0 or args.length < 1 or args.samples < 1 or args.top_k < 0 or not 0 < args.top_p <= 1:
        raise ChargenError("need --temperature >= 0, --length >= 1, --samples >= 1, --top-k >= 0, 0 < --top-p <= 1")

    gen = Generator(args.model)
    opts = dict(length=args.length, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                method=args.method)

    def once(prompt: str, seed: int):
        ids = gen.encode_prompt(prompt)
        texts = gen.sample(np.tile(ids, (args.samples, 1)), seed=seed, **opts)
        for i, t in enumerate(texts):
            if args.samples > 1:
                print(f"--- sample {i + 1} (seed {seed + i})")
            print(t, flush=True)

    if args.interactive:
        seed = args.seed
        print("enter a prompt (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            try:
                once(line.rstrip("\n") or "\n", seed)
            except ChargenError as exc:
                print(f"error: {exc}", file=sys.stderr)
            seed += args.samples
        return
    prompt = args.prompt
    if args.prompt_file:
        try:
            with open(args.prompt_file, encoding="utf-8") as fh:
                prompt = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ChargenError(f"cannot read --prompt-file {args.prompt_file}: {exc}") from None
    once(prompt, args.seed)


if __name__ == "__main__":
    run_stage(main)
