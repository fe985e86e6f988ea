"""Use a trained model from Python: load a model folder, generate (whole or streamed), score text.

    import chargen.api as chargen
    model = chargen.load("models/best")
    print(model.generate("alice was", length=200, temperature=0.7)[0])
    for ch in model.stream("alice was", length=200):
        print(ch, end="", flush=True)
    s = model.score("alice was beginning to get very tired")
    print(s.bpc, s.surprisal)

The command line (`python -m chargen.generate`, `python -m chargen.score`) and the generate
stage go through this module, so a sample made here is the sample the CLI and the stage make.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chargen.bundle import load_bundle, load_train_ids, no_train_text
from chargen.cleaning import normalise
from chargen.controls import DEFAULTS, METHODS, check_controls  # noqa: F401 (part of the API)
from chargen.dataset import decode, encode
from chargen.io import ChargenError
from chargen.model import numpy_weights
from chargen.ngram import MixedStep, TrainCounts
from chargen.numpy_lstm import StepLSTM, one_blas_thread
from chargen.sampling import draw, probabilities, sample_stateful, sample_window, uniforms


@dataclass
class Score:
    """How surprising a text is to the model. `text` is the text as the model saw it (normalised
    like its training text). The model reads the characters of its vocabulary in order and skips
    the others (`skipped` of them): its state goes from the character before a skipped one
    straight to the one after, so what is scored is the text with those characters removed.
    surprisal[i] is -log2 P(text[i] | the characters read before it) in bits, NaN where nothing
    is scored: a skipped character, and the first one read, which nothing precedes. bpc is the
    mean over the scored characters."""

    text: str
    surprisal: np.ndarray
    bpc: float
    skipped: int = 0


class Model:
    """A model folder (models/best) loaded for use: its Keras model, vocabulary and config,
    and the NumPy step function that generation and scoring run on."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.keras, self.vocab, self.config = load_bundle(folder)
        self.step = StepLSTM(numpy_weights(self.keras))
        self.seq_length = self.config["seq_length"]
        self.train_ids = load_train_ids(folder)
        self._counts = {}  # TrainCounts per n-gram order, built on first use

    def sampler(self, ngram_weight: float, ngram_order: int):
        """What generation draws from: the LSTM step, or it mixed with the n-gram model of the
        training text (chargen.ngram.MixedStep), as the evaluate stage scores it (lstm_ngram)."""
        if not ngram_weight:
            return self.step
        if self.train_ids is None:
            raise ChargenError(no_train_text(self.folder, self.config))
        if ngram_order not in self._counts:
            self._counts[ngram_order] = TrainCounts(self.train_ids, ngram_order, len(self.vocab))
        return MixedStep(self.step, self._counts[ngram_order], ngram_weight)

    def normalise(self, text: str) -> str:
        """`text` normalised as the training text was (lowercase, folded typography)."""
        return normalise(text, self.config.get("lowercase", False), self.config.get("fold_typography", False))

    def encode(self, text: str, what: str = "prompt") -> np.ndarray:
        """Ids of `text` after the training text's normalisation; refused if any character of it
        is outside the vocabulary."""
        text = self.normalise(text)
        bad = sorted(set(text) - set(self.vocab))
        if bad:
            raise ChargenError(
                f"{what} has character(s) outside the model's vocabulary: {', '.join(repr(c) for c in bad)}; "
                f"remove them (the vocabulary has {len(self.vocab)} characters)"
            )
        if not text:
            raise ChargenError(f"{what} is empty: give at least one character")
        return encode(text, self.vocab).astype(np.int64)

    def decode(self, ids) -> str:
        return decode(ids, self.vocab)

    def _prompts(self, prompt, samples: int) -> np.ndarray:
        """A (samples, T) id array from a str, or an id array given as is (one row per sample)."""
        if isinstance(prompt, str):
            return np.tile(self.encode(prompt), (samples, 1))
        ids = np.asarray(prompt, dtype=np.int64)
        return ids if ids.ndim == 2 else np.tile(ids, (samples, 1))

    def generate(self, prompt="\n", **controls) -> list[str]:
        """`samples` continuations of `prompt` (a str, or an id array, one row per sample);
        sample i draws from its own generator seeded seed + i."""
        c = {**DEFAULTS, **controls}
        check_controls(**c)
        prompts = self._prompts(prompt, c["samples"])
        kw = dict(temperature=c["temperature"], top_k=c["top_k"], top_p=c["top_p"], seed=c["seed"])
        if c["method"] == "window":
            ids = sample_window(self.keras, prompts, c["length"], self.seq_length, **kw)
        else:
            ids = sample_stateful(self.sampler(c["ngram_weight"], c["ngram_order"]), prompts, c["length"], **kw)
        return [self.decode(row) for row in ids]

    def stream(self, prompt="\n", **controls):
        """Yield one generated character at a time, as soon as it is drawn: the same text as
        generate(...)[0] with the same controls (and `samples` ignored: sample i of a batch is
        stream(..., seed=seed + i))."""
        c = {**DEFAULTS, **controls, "samples": 1}
        check_controls(**c)
        ctx = self._prompts(prompt, 1)
        u = uniforms(c["seed"], 1, c["length"])
        filt = dict(temperature=c["temperature"], top_k=c["top_k"], top_p=c["top_p"])
        if c["method"] == "stateful":  # the tutorial's window method samples from the LSTM alone
            step = self.sampler(c["ngram_weight"], c["ngram_order"])
            with one_blas_thread():  # per call: not held while the caller runs between characters
                logits, state = step.feed(ctx)
        for t in range(c["length"]):
            if c["method"] == "window":
                logits = np.asarray(self.keras.predict_on_batch(ctx[:, -self.seq_length:].astype("int32")))
                logits = logits[:, -1] if logits.ndim == 3 else logits
            nxt = draw(probabilities(logits, **filt), u[t])
            yield self.vocab[int(nxt[0])]
            if c["method"] == "window":
                ctx = np.concatenate([ctx, nxt[:, None]], axis=1)
            elif t + 1 < c["length"]:
                with one_blas_thread():
                    logits, state = step.step(nxt, state)

    def score(self, text: str) -> Score:
        """Per-character surprisal (bits) of `text` read as one stream, its state carried, as
        the evaluate stage reads the validation text; characters outside the vocabulary are
        skipped (see Score). Refused only if fewer than two characters can be read."""
        text = self.normalise(text)
        index = {ch: i for i, ch in enumerate(self.vocab)}
        read = np.array([ch in index for ch in text], dtype=bool)
        ids = np.array([index[ch] for ch in text if ch in index], dtype=np.int64)
        if len(ids) < 2:
            raise ChargenError(
                f"text has nothing to score: {len(ids)} of its {len(text)} characters "
                f"{'is' if len(ids) == 1 else 'are'} in the model's "
                f"vocabulary ({len(self.vocab)} characters), and scoring needs 2 (the first one read is not "
                f"scored); give a text in the alphabet the model was trained on")
        bits_read = np.full(len(ids), np.nan)
        state = self.step.zero_state(1)
        with one_blas_thread():  # small products: one BLAS thread is faster, and never waits
            for t in range(len(ids) - 1):
                logits, state = self.step.step(ids[t:t + 1], state)
                z = logits[0].astype("float64")
                m = z.max()
                bits_read[t + 1] = (m + np.log(np.exp(z - m).sum()) - z[ids[t + 1]]) / np.log(2.0)
        bits = np.full(len(text), np.nan)
        bits[read] = bits_read
        return Score(text, bits, float(bits_read[1:].mean()), skipped=int(len(text) - len(ids)))


def load(folder="models/best") -> Model:
    """Load a model folder written by the select stage (model.keras, vocab.json, config.json and
    train_ids.npy, the training text the sampler's n-gram counts)."""
    return Model(folder)
