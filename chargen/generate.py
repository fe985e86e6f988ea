"""Generate text from a trained model folder, streamed to stdout as it is drawn.

    python -m chargen.generate --model models/best --prompt "alice was" --temperature 0.7 --length 300
    python -m chargen.generate --model models/best --interactive
"""

from __future__ import annotations

import argparse
import sys

from chargen.bundle import has_train_text, no_train_text, read_config
from chargen.controls import DEFAULTS, METHODS, check_controls
from chargen.io import ChargenError, run_stage


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m chargen.generate", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="models/best", help="a model folder written by the select stage")
    ap.add_argument("--prompt", default="\n", help="text to continue (default: %(default)r, a newline)")
    ap.add_argument("--prompt-file", help="read the prompt from this UTF-8 file instead of --prompt")
    ap.add_argument("--temperature", type=float, default=DEFAULTS["temperature"],
                    help="sampling temperature; 0 = greedy (always the most likely character)")
    ap.add_argument("--top-k", type=int, default=DEFAULTS["top_k"],
                    help="draw only among the k most likely characters; 0 = off")
    ap.add_argument("--top-p", type=float, default=DEFAULTS["top_p"],
                    help="nucleus sampling: the smallest set of characters with this much mass; 1 = off")
    ap.add_argument("--length", type=int, default=DEFAULTS["length"], help="characters to generate per sample")
    ap.add_argument("--samples", type=int, default=DEFAULTS["samples"],
                    help="samples per prompt; sample i is seeded seed + i")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the first sample")
    ap.add_argument("--ngram-weight", type=float, default=DEFAULTS["ngram_weight"],
                    help="mix the n-gram model of the training text in at this weight (as the generate "
                         "stage does); 0 = the LSTM alone")
    ap.add_argument("--ngram-order", type=int, default=DEFAULTS["ngram_order"],
                    help="the n-gram model's longest context, in characters")
    ap.add_argument("--method", choices=METHODS, default=DEFAULTS["method"],
                    help="stateful: one LSTM step per character; window: the tutorial's re-feed of the "
                         "last seq_length characters (slow)")
    ap.add_argument("--show-prompt", action=argparse.BooleanOptionalAction, default=True,
                    help="print the prompt (as the model reads it: normalised) before each sample")
    ap.add_argument("--interactive", action="store_true",
                    help="read prompts line by line from stdin; each answer under its own header")
    return ap.parse_args(argv)


def write_samples(model, prompt: str, args, seed: int, out=sys.stdout) -> None:
    """Each sample streamed character by character (flushed), after its prompt if shown."""
    shown = model.decode(model.encode(prompt))  # refuses a bad prompt before anything is printed
    for i in range(args.samples):
        if args.samples > 1:
            out.write(f"--- sample {i + 1} (seed {seed + i})\n")
        if args.show_prompt:
            out.write(shown)
        out.flush()
        for ch in model.stream(prompt, length=args.length, temperature=args.temperature, top_k=args.top_k,
                               top_p=args.top_p, seed=seed + i, method=args.method,
                               ngram_weight=args.ngram_weight, ngram_order=args.ngram_order):
            out.write(ch)
            out.flush()
        out.write("\n")
        out.flush()


def main(argv=None):
    args = parse(argv)
    check_controls(length=args.length, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   samples=args.samples, seed=args.seed, method=args.method, ngram_weight=args.ngram_weight,
                   ngram_order=args.ngram_order, cli=True)
    prompt = args.prompt
    if args.prompt_file and not args.interactive:
        try:
            with open(args.prompt_file, encoding="utf-8") as fh:
                prompt = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ChargenError(f"cannot read --prompt-file {args.prompt_file}: {exc}") from None
    config = read_config(args.model)
    if args.method == "stateful" and args.ngram_weight and not has_train_text(args.model):
        raise ChargenError(no_train_text(args.model, config))  # before a prompt is printed
    # TensorFlow and Keras take seconds to import: only once the arguments are known to be good.
    from chargen.api import load

    model = load(args.model)
    if args.interactive:
        seed, n = args.seed, 0
        print("enter a prompt (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            prompt = line.rstrip("\n") or "\n"
            n += 1
            print(f"=== answer {n} to prompt {prompt!r}", flush=True)
            try:
                write_samples(model, prompt, args, seed)
            except ChargenError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
            print(flush=True)
            seed += args.samples
        return
    write_samples(model, prompt, args, args.seed)


if __name__ == "__main__":
    run_stage(main)
