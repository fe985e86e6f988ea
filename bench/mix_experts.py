"""Would more experts improve the evaluate stage's mixture? Scores the committed model's
predictions (static, dynamic) with the n-gram models of several orders and a match model, in the
geometric online mixture of chargen.ngram.mix_bpc, in bits/char of the validation text.

    python bench/mix_experts.py [--model models/best] [--dataset data/prepared/dataset.npz]

The match model predicts the character that followed the most recent earlier occurrence of the
longest context (32, 20, 12 or 8 chars) that occurred before; one expert per length, uniform when
another length (or none) matched, so the mixer learns how far to trust each length.
"""

import argparse

import numpy as np

from chargen.ngram import _context_hashes

LENGTHS = (32, 20, 12, 8)


def match_experts(train, val, vocab_size, eps=0.1):
    seq = np.concatenate([train, val])
    nt = len(train)
    hashes = {n: _context_hashes(seq, n) for n in LENGTHS}
    latest = {n: {h: p for p, h in enumerate(hashes[n][n:nt], start=n)} for n in LENGTHS}
    experts = [np.full((len(val) - 1, vocab_size), 1.0 / vocab_size) for _ in LENGTHS]
    for i, t in enumerate(range(nt + 1, len(seq))):
        for e, n in enumerate(LENGTHS):
            p = latest[n].get(hashes[n][t])
            if p is not None:
                experts[e][i] = eps / vocab_size
                experts[e][i, seq[p]] += 1 - eps
                break
        for n in LENGTHS:  # position t is now read
            latest[n][hashes[n][t]] = t
    return experts


def main():
    ap = argparse.ArgumentParser(description="Score the evaluate stage's mixture with more experts.")
    ap.add_argument("--model", default="models/best", help="a model folder written by the select stage")
    ap.add_argument("--dataset", default="data/prepared/dataset.npz", help="the prepare stage's dataset")
    args = ap.parse_args()
    from chargen.bundle import load_bundle  # TensorFlow: after the arguments are read
    from chargen.dataset import load_dataset
    from chargen.evaluate import bits_per_char, dynamic_probs, model_probs
    from chargen.model import numpy_weights
    from chargen.ngram import mix_bpc, ngram_probs
    from chargen.numpy_lstm import StepLSTM

    model, vocab, _ = load_bundle(args.model)
    ds = load_dataset(args.dataset)
    train, val = np.asarray(ds["train_ids"]), np.asarray(ds["val_ids"])
    y, V = val[1:], len(vocab)
    static = model_probs(StepLSTM(numpy_weights(model)), val)
    dyn = dynamic_probs(model, val, 0.1, 32)
    ng = {k: ngram_probs(train, val, k, V) for k in (3, 4, 6, 10, 16)}
    rows = {
        "static": bits_per_char(static, y),
        "dynamic": bits_per_char(dyn, y),
        "dynamic + 10-gram (evaluate's lstm_mix)": mix_bpc([dyn, ng[10]], y, 0.002),
        "dynamic + static + 10-gram": mix_bpc([dyn, static, ng[10]], y, 0.002),
        "dynamic + 4-gram + 10-gram": mix_bpc([dyn, ng[4], ng[10]], y, 0.002),
        "dynamic + 3-, 6-, 10-, 16-gram": mix_bpc([dyn, ng[3], ng[6], ng[10], ng[16]], y, 0.002),
        "dynamic + 10-gram + match model": mix_bpc([dyn, ng[10], *match_experts(train, val, V)], y, 0.002),
    }
    print("| predictions | bits/char |\n| --- | ---: |")
    for name, bpc in rows.items():
        print(f"| {name} | {bpc:.4f} |")


if __name__ == "__main__":
    main()
