"""Training, checkpoints, resume and selection on a tiny model and text."""

import json
from pathlib import Path

import numpy as np
import pytest

from chargen import bundle, checkpoints, select, train
from chargen.dataset import load_dataset
from chargen.io import ChargenError
from chargen.model import load_model

CFG = dict(objective="sequence", batches="windows", input="embedding", embedding_dim=8, layers=1, units=16,
           dropout=0.0,
           batch_size=16, epochs=2, learning_rate=0.01, lr_schedule="constant", clipnorm=1.0, patience=0,
           precision="float32", sample_every=0, steps_per_epoch=0, strategy="single")


def logs():
    lines = []
    return lines, lines.append


def test_trains_checkpoints_and_resumes(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    lines, log = logs()
    s1 = train.train(dict(CFG, epochs=2), 1, dataset, ckpt, log=log)
    assert s1["epochs_run"] == 2 and sorted(p.name for p in ckpt.glob("epoch_*")) == [
        "epoch_0001.weights.h5", "epoch_0002.weights.h5"]
    assert [p.name for p in ckpt.glob("resume_*.keras")] == ["resume_0002.keras"]
    # Raising epochs (not fingerprinted under a constant schedule) continues where it stopped.
    lines, log = logs()
    s2 = train.train(dict(CFG, epochs=4), 1, dataset, ckpt, log=log)
    assert "resuming from epoch 2" in lines[0]
    hist = checkpoints.read_history(ckpt / "history.csv")
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4] and s2["epochs_run"] == 4
    assert hist[3]["train_loss"] < hist[0]["train_loss"]
    assert abs(hist[0]["val_bpc"] - hist[0]["val_loss"] / np.log(2)) < 1e-5


@pytest.mark.parametrize("batches,dropout,chunk,weight_drop", [
    ("windows", 0.3, 0, 0.0), ("streams", 0.3, 0, 0.0), ("streams", 0.3, 2, 0.0), ("windows", 0.0, 0, 0.0),
    ("streams", 0.3, 2, 0.4)])
def test_resumed_run_matches_an_uninterrupted_one(tmp_path, dataset, batches, dropout, chunk, weight_drop):
    """Exactly: with dropout (and weight drop) on, the resumed epochs draw the same masks as the
    epochs of the uninterrupted run, so history and weights are the same numbers, not close ones."""
    cfg = dict(CFG, batches=batches, dropout=dropout, stream_chunk=chunk, weight_drop=weight_drop)
    seen = []
    whole = train.train(dict(cfg, epochs=3), 5, dataset, tmp_path / "a", log=lambda *_: None,
                        on_history=lambda h: seen.append([dict(r) for r in h]))
    # What the run kept in memory is exactly what a resume reads back from history.csv.
    assert seen[-1] == checkpoints.read_history(tmp_path / "a" / "history.csv")
    train.train(dict(cfg, epochs=1), 5, dataset, tmp_path / "b", log=lambda *_: None)
    resumed = train.train(dict(cfg, epochs=3), 5, dataset, tmp_path / "b", log=lambda *_: None)
    # The summary (metrics/train.json) is the same to the last digit, not just close.
    assert {k: v for k, v in whole.items() if k != "run"} == {k: v for k, v in resumed.items() if k != "run"}
    a = checkpoints.read_history(tmp_path / "a" / "history.csv")
    b = checkpoints.read_history(tmp_path / "b" / "history.csv")
    assert [r["epoch"] for r in b] == [1, 2, 3] and a == b
    wa, wb = (load_model(tmp_path / d / "resume_0003.keras").get_weights() for d in "ab")
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    # The checkpoint folder is a DVC output: the resumed run's files are the same bytes, so
    # dvc.lock records the same hash as after an uninterrupted run.
    for name in ("resume_0003.keras", "epoch_0003.weights.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_streams_train_a_stateful_model_whose_weights_select_reads(tmp_path, dataset):
    """batches: streams trains a stateful copy (fixed batch, state carried) with the same weights
    as the stateless model that select builds; too little validation text is a clear error."""
    ckpt = tmp_path / "ckpt"
    s = train.train(dict(CFG, batches="streams", epochs=2), 1, dataset, ckpt, log=lambda *_: None)
    hist = checkpoints.read_history(ckpt / "history.csv")
    assert s["epochs_run"] == 2 and hist[1]["train_loss"] < hist[0]["train_loss"]
    resumable = load_model(ckpt / "resume_0002.keras")
    assert all(layer.stateful for layer in resumable.layers if hasattr(layer, "stateful"))
    res = select.select(ckpt, dataset, tmp_path / "best")
    model, _, _ = bundle.load_bundle(tmp_path / "best")
    assert not any(getattr(layer, "stateful", False) for layer in model.layers)
    assert abs(select.val_loss(model, load_dataset(dataset)["val_ids"]) - res["val_loss_nats"]) < 1e-4
    with pytest.raises(ChargenError, match="too short for 64 streams of 20 chars .* lower train.batch_size"):
        train.train(dict(CFG, batches="streams", batch_size=64), 1, dataset, tmp_path / "c", log=lambda *_: None)


def test_auto_batches_follow_the_text_against_the_budget():
    """batches: auto trains windows on a text the budget reads often (Alice), streams on one it
    reads a few times (Moby Dick), and says which and why; windows where streams cannot run."""
    cfg = dict(CFG, batches="auto", stream_chunk=8, epochs=20, steps_per_epoch=128, batch_size=32)
    lines, log = logs()
    assert train.batches_mode(cfg, 130_000, 32, 14_000, log) == "windows"
    assert lines[-1] == "train.batches: auto -> windows (the budget reads the training text 20.0 times, at least 8)"
    assert train.batches_mode(cfg, 1_100_000, 32, 120_000, log) == "streams"
    assert lines[-1] == ("train.batches: auto -> streams in chunks of 8 windows (the budget reads the "
                         "training text 2.4 times, fewer than 8)")
    assert train.batches_mode(dict(cfg, steps_per_epoch=0, epochs=3), 130_000, 32, 14_000) == "streams"
    assert train.batches_mode(dict(cfg, objective="last"), 1_100_000, 32, 120_000) == "windows"
    assert train.batches_mode(dict(cfg, strategy="mirrored"), 1_100_000, 32, 120_000) == "windows"
    assert train.batches_mode(cfg, 1_100_000, 32, 500, log) == "windows"
    assert "too short for 32 streams" in lines[-1]
    assert train.batches_mode(dict(cfg, epochs=2), 280, 32, 120_000, log) == "windows"  # not one 256-char chunk
    assert "too short for 32 streams" in lines[-1]
    assert train.batches_mode(dict(cfg, batches="windows"), 1_100_000, 32, 120_000) == "windows"


def test_stream_chunks_zero_the_state_when_the_rows_move_on():
    """With train.stream_chunk the state is zeroed at each chunk's first batch, and only there
    (the epoch's first batch is zeroed by on_epoch_begin); whole streams only at epoch starts."""
    from chargen.batches import Streams
    from chargen.callbacks import ResetStates

    class Layer:
        stateful, resets = True, 0

        def reset_state(self):
            self.resets += 1

    layer = Layer()
    for chunk, expected in [(3, [3, 6, 9]), (0, [])]:
        cb = ResetStates(Streams(np.arange(600, dtype=np.int32), 10, 2, seed=1, chunk=chunk))
        cb.set_model(type("Model", (), {"layers": [layer]})())
        zeroed = []
        for i in range(11):
            before = layer.resets
            cb.on_train_batch_begin(i)
            if layer.resets > before:
                zeroed.append(i)
        assert zeroed == expected


def test_other_params_never_resume(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=1), 1, dataset, ckpt, log=lambda *_: None)
    lines, log = logs()
    train.train(dict(CFG, epochs=1, units=12), 1, dataset, ckpt, log=log)
    assert "other params or data" in lines[0] and not any("resuming" in x for x in lines)
    assert json.loads((ckpt / "fingerprint.json").read_text())["train"]["units"] == 12
    (kept,) = (tmp_path / "ckpt.prev").iterdir()  # the old run, kept aside under its fingerprint id
    first = checkpoints.fingerprint_id(kept)
    assert kept.name == first and (kept / "epoch_0001.weights.h5").exists()

    # Back to the first params: their checkpoints are put back and resumed, not retrained; the
    # second run's are kept in turn. Nothing is lost either way.
    lines, log = logs()
    train.train(dict(CFG, epochs=1), 1, dataset, ckpt, log=log)
    assert any("put back the checkpoints" in x for x in lines) and any("resuming from epoch 1" in x for x in lines)
    assert checkpoints.fingerprint_id(ckpt) == first
    (kept,) = (tmp_path / "ckpt.prev").iterdir()  # now the units=12 run
    assert kept.name == checkpoints.fingerprint_id(kept) != first


def test_half_written_epoch_is_discarded(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=2), 1, dataset, ckpt, log=lambda *_: None)
    # As if killed after epoch 3's files were written but before its history row (the commit).
    (ckpt / "epoch_0003.weights.h5").write_bytes(b"partial")
    (ckpt / "resume_0003.keras").write_bytes(b"partial")
    fp = json.loads((ckpt / "fingerprint.json").read_text())
    done, hist = checkpoints.prepare_checkpoints(ckpt, fp, print)
    assert done == 2 and len(hist) == 2
    assert not (ckpt / "epoch_0003.weights.h5").exists() and not (ckpt / "resume_0003.keras").exists()


def test_early_stopping_from_history():
    h = [{"val_loss": v} for v in (3.0, 2.0, 2.1, 2.2)]
    assert checkpoints.early_stop_due(h, 2) and not checkpoints.early_stop_due(h, 3) and not checkpoints.early_stop_due(h, 0)


def test_select_picks_the_lowest_stream_loss_and_is_loadable_alone(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=3), 1, dataset, ckpt, log=lambda *_: None)
    out = tmp_path / "best"
    res = select.select(ckpt, dataset, out, average=2)
    assert res["candidates"] == 3 and res["val_bpc"] <= res["best_single_val_bpc"]
    model, vocab, config = bundle.load_bundle(out)
    ds = load_dataset(dataset)
    assert vocab == ds["vocab"] and config["lowercase"] is True
    assert abs(select.val_loss(model, ds["val_ids"]) - res["val_loss_nats"]) < 1e-4
    # A damaged model folder is a one-line error, not a traceback.
    (out / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ChargenError, match=r"model.keras is corrupt or truncated .*dvc repro -f select"):
        bundle.load_bundle(out)


def test_select_re_scores_only_the_checkpoints_the_log_ranks_best(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=4), 1, dataset, ckpt, log=lambda *_: None)
    # A log that ranks epochs 1 and 3 best (a tiny run's loss just falls, so the last would be).
    rows = checkpoints.read_history(ckpt / "history.csv")
    for r, logged in zip(rows, (1.0, 3.0, 2.0, 4.0)):
        r["val_loss"] = logged
    (ckpt / "history.csv").write_text(checkpoints.history_csv(rows))
    lines = []
    res = select.select(ckpt, dataset, tmp_path / "best", candidates=2, log=lines.append)
    scored = [int(line.split("(epoch ")[1].split(")")[0]) for line in lines if line.startswith("  checkpoint ")]
    assert scored == [1, 3] and res["epoch"] in scored
    assert (res["candidates"], res["checkpoints"]) == (2, 4) and "the 2 of 4 with the lowest logged loss" in lines[0]
    # Averaging N needs N scored; 0 scores every checkpoint.
    assert select.select(ckpt, dataset, tmp_path / "b3", average=3, candidates=2, log=str)["candidates"] == 3
    assert select.select(ckpt, dataset, tmp_path / "b0", candidates=0, log=str)["candidates"] == 4


def test_shortlist_ranks_by_logged_loss_earlier_epoch_first_on_ties():
    files = [Path(checkpoints.weights_name(e)) for e in (1, 2, 3, 4)]
    history = [{"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": float("nan")},
               {"epoch": 3, "val_loss": 1.5}, {"epoch": 4, "val_loss": 2.0}]
    assert [checkpoints.epoch_of(p) for p in select.shortlist(files, history, 2)] == [1, 3]
    assert select.shortlist(files, history, 0) == files and select.shortlist(files, history, 9) == files
    # A diverged run (no logged loss is a number) gives no ranking: every checkpoint is re-scored.
    diverged = [dict(r, val_loss=float("nan")) for r in history]
    assert select.shortlist(files, diverged, 2) == files


def test_no_checkpoints_is_a_clear_error(tmp_path, dataset):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "fingerprint.json").write_text(json.dumps({"train": CFG, "vocab_size": 0}))
    with pytest.raises(ChargenError, match="another dataset|no finished checkpoint"):
        select.select(tmp_path / "ckpt", dataset, tmp_path / "best")


def test_samples_during_training(tmp_path, dataset):
    lines, log = logs()
    train.train(dict(CFG, epochs=2, sample_every=2), 1, dataset, tmp_path / "ckpt", log=log)
    files = sorted(p.name for p in (tmp_path / "ckpt" / "samples").iterdir())
    assert files == ["epoch_0002.txt"]
    body = (tmp_path / "ckpt" / "samples" / "epoch_0002.txt").read_text()
    assert body.startswith("prompt: ") and len(body.split("\n\n", 1)[1]) == 301
    assert any(x.startswith("  sample: ") for x in lines)


def test_generator_prompt_checks_and_cli(tmp_path, dataset):
    import subprocess
    import sys

    from chargen.api import load
    from conftest import ROOT, env_with_venv

    train.train(dict(CFG, epochs=1), 1, dataset, tmp_path / "ckpt", log=lambda *_: None)
    select.select(tmp_path / "ckpt", dataset, tmp_path / "best")
    gen = load(tmp_path / "best")
    with pytest.raises(ChargenError, match="outside the model's vocabulary: '€'"):
        gen.encode("the €")
    # Lowercasing applies to prompts as to the training text.
    assert (gen.encode("THE Cat") == gen.encode("the cat")).all()

    cli = [sys.executable, "-m", "chargen.generate", "--model", str(tmp_path / "best"), "--length", "40"]
    res = subprocess.run(cli + ["--prompt", "the cat", "--seed", "3"], cwd=ROOT, capture_output=True, text=True,
                         env=env_with_venv())
    assert res.returncode == 0 and len(res.stdout) == len("the cat") + 41 and res.stdout.startswith("the cat")
    again = subprocess.run(cli + ["--prompt", "the cat", "--seed", "3"], cwd=ROOT, capture_output=True, text=True,
                           env=env_with_venv())
    assert again.stdout == res.stdout
    res = subprocess.run(cli + ["--interactive"], input="alice\nthe queen\n", cwd=ROOT, capture_output=True,
                         text=True, env=env_with_venv())
    assert res.returncode == 0 and "=== answer 1 to prompt 'alice'" in res.stdout
    assert "=== answer 2 to prompt 'the queen'" in res.stdout
    res = subprocess.run(cli + ["--prompt", "€"], cwd=ROOT, capture_output=True, text=True, env=env_with_venv())
    assert res.returncode == 1 and res.stderr.strip().startswith("error: prompt has character(s) outside")


def test_the_same_model_saves_to_the_same_bytes(tmp_path):
    """Two processes saving the same model write identical .keras files: no save date, no memory
    addresses (Keras' shared_object_id), fixed zip timestamps; and the file loads back."""
    import hashlib
    import subprocess
    import sys

    from conftest import ROOT, env_with_venv

    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r})\n"
            "from chargen.model import build, load_model, save_model\n"
            "from chargen.quiet import keras\n"
            "keras.utils.set_random_seed(1)\n"
            "m = build(20, json.loads(sys.argv[2]))\n"
            "save_model(m, sys.argv[1])\n"
            "assert load_model(sys.argv[1]).count_params() == m.count_params()\n")
    digests = []
    for name in ("a.keras", "b.keras"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name), json.dumps(CFG)], check=True,
                       env=env_with_venv())
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_a_damaged_resume_file_falls_back_to_the_epoch_weights_and_still_resumes_exactly(tmp_path, dataset):
    cfg = dict(CFG, dropout=0.3)
    train.train(dict(cfg, epochs=3), 5, dataset, tmp_path / "a", log=lambda *_: None)
    train.train(dict(cfg, epochs=1), 5, dataset, tmp_path / "b", log=lambda *_: None)
    (tmp_path / "b" / "resume_0001.keras").write_bytes(np.random.default_rng(0).bytes(5000))
    lines, log = logs()
    train.train(dict(cfg, epochs=3), 5, dataset, tmp_path / "b", log=log)
    warning = next(line for line in lines if line.startswith("warning:"))
    assert "resume_0001.keras is corrupt or truncated" in warning and "kept as resume_0001.keras.unusable" in warning
    assert "resuming from epoch 1 with epoch_0001.weights.h5" in warning
    assert (tmp_path / "b" / "resume_0001.keras.unusable").is_file()  # kept, not deleted
    # The weights file holds the optimizer's state too: the run goes on as if nothing happened.
    assert checkpoints.read_history(tmp_path / "a" / "history.csv") == \
        checkpoints.read_history(tmp_path / "b" / "history.csv")


def test_when_nothing_of_the_last_epoch_loads_training_starts_over_and_keeps_the_folder(tmp_path, dataset):
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=1), 5, dataset, ckpt, log=lambda *_: None)
    (ckpt / "resume_0001.keras").write_bytes(b"junk")
    (ckpt / "epoch_0001.weights.h5").write_bytes(b"junk")
    lines, log = logs()
    summary = train.train(dict(CFG, epochs=2), 5, dataset, ckpt, log=log)
    assert any("epoch_0001.weights.h5 is unusable too" in line and "starts over" in line for line in lines)
    assert summary["epochs_run"] == 2 and [r["epoch"] for r in checkpoints.read_history(ckpt / "history.csv")] == [1, 2]
    kept = list((tmp_path / "ckpt.prev").glob("*-unusable-1"))
    assert len(kept) == 1 and (kept[0] / "resume_0001.keras.unusable").read_bytes() == b"junk"


def test_val_chars_bounds_what_training_and_select_validate_on(tmp_path, dataset):
    """On a big book, per-epoch validation and select read at most train.val_chars characters of
    the held-out text (the evaluate stage reads all of it)."""
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=1, val_chars=300), 1, dataset, ckpt, log=lambda *_: None)
    res = select.select(ckpt, dataset, tmp_path / "best")
    assert res["val_chars_scored"] == (300 - 1) // select.STREAMS * select.STREAMS
    assert len(load_dataset(dataset)["val_ids"]) > 1000  # so the cap took effect
    with pytest.raises(ChargenError, match="no complete window in train or validation.*raise train.val_chars"):
        train.train(dict(CFG, epochs=1, val_chars=10), 1, dataset, tmp_path / "tiny", log=lambda *_: None)


class _Order:
    def set_epoch(self, epoch):
        pass


def _epochs_ended_by(epochs: int, patience: int, val_losses) -> tuple[list[str], int]:
    """(lines logged, epochs run) by the epoch-end callback fed these validation losses, as
    model.fit feeds it (the model is a stand-in: nothing is written)."""
    from chargen.callbacks import EpochCommit
    from chargen.quiet import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    lines, history = [], []
    commit = EpochCommit(None, history, patience, _Order(), log=lines.append, write=False)
    commit.set_model(model)
    commit.set_params({"epochs": epochs})
    for epoch, loss in enumerate(val_losses):
        commit.on_epoch_begin(epoch)
        commit.on_epoch_end(epoch, {"loss": 1.0, "val_loss": loss})
        if model.stop_training:
            break
    return lines, len(history)


def test_the_last_line_says_what_ended_the_run():
    # The budget: 20 of 20 epochs, the best at epoch 14 (6 epochs before, as patience 6 allows).
    lines, run = _epochs_ended_by(20, 6, [2.0 - 0.01 * e for e in range(14)] + [2.0] * 6)
    assert run == 20 and not any("early stop" in line for line in lines)
    assert lines[-1].startswith("done: the epoch budget ended the run after epoch 20 of 20 (train.epochs)")
    assert "no val improvement in its last 6 epochs either" in lines[-1]
    # Early stopping: the best at epoch 3, then 2 epochs without improvement under patience 2.
    lines, run = _epochs_ended_by(10, 2, [2.0, 1.9, 1.8, 1.85, 1.9, 1.95])
    assert run == 5 and lines[-1] == ("early stop after epoch 5 of 10: no val improvement in 2 epochs "
                                      "(train.patience)")
    assert not any("budget" in line for line in lines)


def test_a_finished_run_says_so_and_trains_nothing(tmp_path, dataset):
    lines, log = logs()
    train.train(dict(CFG, epochs=2), 1, dataset, tmp_path / "ckpt", log=log)
    assert lines[-1].startswith("done: the epoch budget ended the run after epoch 2 of 2 (train.epochs)")
    lines, log = logs()
    train.train(dict(CFG, epochs=2), 1, dataset, tmp_path / "ckpt", log=log)
    assert lines[-1].startswith("done: the epoch budget ended the run after epoch 2 of 2")
    assert not any(line.startswith("training ") for line in lines)


def test_weight_drop_off_keeps_the_checkpoints_of_runs_before_the_key_existed():
    before = checkpoints.fingerprint(CFG, 1, "sha")
    assert checkpoints.fingerprint(dict(CFG, weight_drop=0.0), 1, "sha") == before
    assert checkpoints.fingerprint(dict(CFG, weight_drop=0.3), 1, "sha")["id"] != before["id"]


def test_training_feeds_keras_without_tf_data_autotuning(tmp_path, dataset):
    """Keras' autotuned tf.data wrapper stalled each epoch's first batch for 30 s and more
    (chargen.batches.feed_without_autotune); training turns it off and still trains the same."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from chargen.batches import Batches

    train.train(dict(CFG, epochs=1), 1, dataset, tmp_path / "ckpt", log=lambda *_: None)
    batches = Batches(np.zeros(4000, dtype="uint8"), 16, 16, 4, "sequence", seed=0)
    assert PyDatasetAdapter(batches).get_tf_dataset().options().autotune.enabled is False
