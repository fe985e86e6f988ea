"""Score any text with a trained model: bits per character, and optionally an HTML view of the
text coloured by each character's surprisal. Characters outside the model's vocabulary are not
scored: the model reads the text without them, and the output says how many there were.

    python -m chargen.score --model models/best --text chapter.txt --html chapter.html
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from chargen.bundle import read_config
from chargen.io import ChargenError, run_stage, write_text
from chargen.surprisal import surprisal_html


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m chargen.score", description=__doc__.split("\n\n")[0].replace("\n", " "),
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="models/best", help="a model folder written by the select stage")
    ap.add_argument("--text", required=True, help="the UTF-8 text file to score")
    ap.add_argument("--html", help="also write the coloured view to this file")
    ap.add_argument("--limit", type=int, default=5000, help="characters shown in the HTML view")
    args = ap.parse_args(argv)
    if args.limit < 1:
        raise ChargenError(f"--limit must be at least 1, got {args.limit}")
    try:
        with open(args.text, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ChargenError(f"cannot read --text {args.text}: {exc}") from None
    read_config(args.model)
    # TensorFlow and Keras take seconds to import: only once the arguments are known to be good.
    from chargen.api import load

    model = load(args.model)
    score = model.score(text)
    if args.html:
        write_text(args.html, surprisal_html(score.text, score.surprisal, title=f"Surprisal of {args.text}",
                                             limit=args.limit, skipped=score.skipped))
    scored = int(np.count_nonzero(~np.isnan(score.surprisal)))
    print(json.dumps({"bpc": round(score.bpc, 4), "chars_scored": scored, "chars_skipped": score.skipped}))
    if score.skipped:
        outside = sorted(set(score.text) - set(model.vocab))
        shown = ", ".join(repr(c) for c in outside[:12]) + (", ..." if len(outside) > 12 else "")
        print(f"note: {score.skipped:,} of the {len(score.text):,} characters are outside the model's vocabulary "
              f"({shown}) and not scored: the model reads the text without them", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
