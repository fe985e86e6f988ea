"""The selected-model bundle, models/best: the Keras model, its vocabulary and its config, which
load together or not at all (weights out of step with the vocabulary are refused)."""

from __future__ import annotations

import json
from pathlib import Path

from chargen.io import ChargenError, atomic_path, read_json
from chargen.model import load_model, save_model


def save_bundle(folder, model, vocab: list[str], config: dict) -> None:
    """Write the bundle into a temporary folder and rename it over `folder`."""
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_model(model, tmp / "model.keras")
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))


def load_bundle(folder) -> tuple:
    """(Keras model, vocab list, config dict) from a bundle folder; clear errors if damaged."""
    folder = Path(folder)
    for name in ("model.keras", "vocab.json", "config.json"):
        if not (folder / name).is_file():
            raise ChargenError(f"{folder / name} is missing: run the select stage (dvc repro select)")
    vocab = read_json(folder / "vocab.json")
    config = read_json(folder / "config.json")
    model = load_model(folder / "model.keras")
    if model.output_shape[-1] != len(vocab):
        raise ChargenError(f"{folder}: model has {model.output_shape[-1]} outputs but the vocabulary "
                           f"{len(vocab)} characters; re-run select (dvc repro select)")
    return model, vocab, config
