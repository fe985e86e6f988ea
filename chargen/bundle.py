"""The selected-model bundle, models/best: the Keras model, its vocabulary and its config, which
load together or not at all (weights out of step with the vocabulary are refused).

Keras (and NumPy) are imported only to save or load the model and its training text, so a
command can check a folder with `read_config` at once, before it spends seconds importing
TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

from chargen.io import ChargenError, atomic_path, read_json


FILES = ("model.keras", "vocab.json", "config.json")  # what every model folder holds
TRAIN_IDS = "train_ids.npy"  # the training text's ids, for the n-gram that sampling mixes in
# config.json's "format": 3 since folders hold TRAIN_IDS. Folders of format 2 (the number of the
# dataset they were selected from) or none were written before, mostly without it: they load,
# score and sample from the LSTM alone. Bump it whenever what a folder holds changes.
FORMAT = 3


def save_bundle(folder, model, vocab: list[str], config: dict, train_ids=None) -> None:
    """Write the bundle into a temporary folder and rename it over `folder`. With `train_ids`
    it also holds the (last MAX_TRAIN_CHARS of the) training text, so generation can mix the
    n-gram model in wherever the folder goes."""
    from chargen.model import save_model

    config = {**config, "format": FORMAT}  # the folder's own format, not its dataset's
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_model(model, tmp / "model.keras")
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        if train_ids is not None:
            import numpy as np

            from chargen.ngram import MAX_TRAIN_CHARS
            np.save(tmp / TRAIN_IDS, np.asarray(train_ids[-MAX_TRAIN_CHARS:]), allow_pickle=False)


def has_train_text(folder) -> bool:
    return (Path(folder) / TRAIN_IDS).is_file()


def no_train_text(folder, config: dict) -> str:
    """The error for sampling with the n-gram model from a folder without its training text:
    which chargen wrote the folder, and the two ways on."""
    made = config.get("format")
    if isinstance(made, int) and made >= FORMAT:
        why = "it was saved without it"
    else:
        why = (f"it was written by an earlier chargen (model folder format {made or 'unnumbered'}; "
               f"this one writes format {FORMAT}, with the training text)")
    return (f"{folder} holds no training text ({TRAIN_IDS}) for the n-gram model that sampling mixes in: "
            f"{why}; re-run select to write the folder again (dvc repro -f select, or python -m stages.select), "
            f"or sample from the LSTM alone (--ngram-weight 0; ngram_weight=0 in the API)")


def load_train_ids(folder):
    """The bundle's training text ids, or None for a bundle saved without them."""
    path = Path(folder) / TRAIN_IDS
    if not path.is_file():
        return None
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ChargenError(f"{path} is unreadable ({exc}); re-run the select stage (dvc repro -f select)") from None


def read_config(folder) -> dict:
    """The config of a model folder, once the folder is known to hold a whole model. Cheap (no
    Keras), so a command checks its --model before importing TensorFlow."""
    folder = Path(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise ChargenError(f"{folder / name} is missing: run the select stage (dvc repro select)")
    config = read_json(folder / "config.json")
    made = config.get("format")
    if isinstance(made, int) and made > FORMAT:
        raise ChargenError(f"{folder} was written by a newer chargen (model folder format {made}; this one "
                           f"reads up to {FORMAT}): update chargen, or re-run select with this one")
    return config


def load_bundle(folder) -> tuple:
    """(Keras model, vocab list, config dict) from a bundle folder; clear errors if damaged."""
    from chargen.model import load_model

    folder = Path(folder)
    config = read_config(folder)
    vocab = read_json(folder / "vocab.json")
    model = load_model(folder / "model.keras", fix="re-run the select stage that writes it (dvc repro -f select)")
    if model.output_shape[-1] != len(vocab):
        raise ChargenError(f"{folder}: model has {model.output_shape[-1]} outputs but the vocabulary "
                           f"{len(vocab)} characters; re-run select (dvc repro select)")
    return model, vocab, config
