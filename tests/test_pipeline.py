"""End to end: `dvc repro` on tiny params in a temporary copy of the project, offline."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import MIRROR, dvc, env_with_venv, git, make_text, set_params, stage

STAGES = ["download", "prepare", "train", "select", "generate", "evaluate", "figures"]


def ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def test_repro_outputs_and_rerun_rules(project):
    out = dvc(project, "repro").stdout
    assert ran(out) == STAGES
    raw = json.loads((project / "data/raw/source.json").read_text())
    assert raw["books"][0]["book"] == 11 and (project / "data/raw/pg11.txt").stat().st_size == raw["books"][0]["bytes"]
    with np.load(project / "data/prepared/dataset.npz", allow_pickle=False) as z:
        assert z["train_ids"].dtype == np.uint8 and z["vocab"].dtype.kind == "U"
    prep = json.loads((project / "metrics/prepare.json").read_text())
    assert prep["val_chars"] == round(prep["chars"] * 0.1)
    train = json.loads((project / "metrics/train.json").read_text())
    assert train["epochs_run"] == 2 and train["best_val_bpc"] > 0 and train["params"] > 0
    assert (project / "metrics/train_history.csv").read_text().startswith("epoch,train_loss,val_loss,train_bpc")
    sel = json.loads((project / "metrics/select.json").read_text())
    assert set(sel) == {"epoch", "val_bpc"} and (project / "models/best/model.keras").is_file()
    assert json.loads((project / "metrics/run/select.json").read_text())["candidates"] == 2
    gen = json.loads((project / "metrics/generate.json").read_text())
    temps = [0.5, 0.8, 1.0]
    assert gen["samples"] == 2 * len(temps) and gen["chars"] == 120 * len(temps)
    assert all(f"temp_{t:g}".replace(".", "_") in gen for t in temps)
    samples = json.loads((project / "samples/samples.json").read_text())
    assert len(samples) == 6 and all(len(s["text"]) == 60 for s in samples)
    assert [s["temperature"] for s in samples] == [0.5, 0.5, 0.8, 0.8, 1.0, 1.0]
    quality = (project / "metrics/generate_quality.csv").read_text().splitlines()
    assert quality[0].startswith("temperature,real_word_share") and len(quality) == 4

    ev = json.loads((project / "metrics/eval.json").read_text())
    assert list(ev) == ["lstm", "lstm_ngram", "lstm_dynamic", "lstm_mix", "ngram", "gzip", "bzip2", "xz", "ppmd6",
                        "ppmd16"]
    assert samples[0]["ngram_weight"] == 0.25 and samples[0]["ngram_order"] == 6
    assert json.loads((project / "metrics/run/evaluate.json").read_text())["val_chars"] == prep["val_chars"] - 1
    live = json.loads((project / "metrics/live/metrics.json").read_text())
    assert live == {"step": 2, "val_bpc": live["val_bpc"]} and live["val_bpc"] > 0

    shown = dvc(project, "metrics", "show").stdout
    assert "lstm_dynamic" in shown and "ppmd16" in shown and "chars_per_second" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 160  # fits a terminal
    plots = json.loads(dvc(project, "plots", "show", "--json").stdout)["data"]
    curves = plots["Loss per epoch (bits per character)"][0]["content"]["data"]["values"]
    assert {v["field"] for v in curves} == {"train_bpc", "val_bpc"} and len(curves) == 4
    by_temp = plots["Sample quality per temperature (share of words or word n-grams)"][0]["content"]
    assert len(by_temp["data"]["values"]) == 3 * len(temps)

    # Nothing changed: nothing runs.
    out = dvc(project, "repro").stdout
    assert ran(out) == [] and "didn't change" in out

    # A typo is caught although no stage is stale, and a bad value stops `dvc exp run` before DVC
    # removes any stage's outputs: check_params runs first whenever params.yaml changes.
    kept = {f: (project / f).read_bytes() for f in ("metrics/train.json", "metrics/train_history.csv",
                                                     "metrics/live/metrics.json", "samples/samples.json")}
    with open(project / "params.yaml", "a") as fh:
        fh.write("trian:\n  epochs: 3\n")
    res = dvc(project, "repro", check=False)
    assert res.returncode != 0 and "error: params.yaml: unknown key 'trian'; did you mean 'train'?" in res.stderr
    git(project, "checkout", "--", "params.yaml")
    res = dvc(project, "exp", "run", "-S", "train.epochs=-1", check=False)
    assert res.returncode != 0 and "error: params.yaml: train.epochs = -1 is not allowed" in res.stderr
    assert ran(res.stdout) == [] and {f: (project / f).read_bytes() for f in kept} == kept
    git(project, "checkout", "--", "params.yaml")  # DVC leaves the bad value there
    assert ran(dvc(project, "repro").stdout) == []  # check_params is restored from DVC's run cache
    assert "Data and pipelines are up to date" in dvc(project, "status", "dvc.yaml").stdout

    # A generate param re-runs generate only.
    set_params(project, **{"generate.temperature": 0.5})
    assert ran(dvc(project, "repro").stdout) == ["generate", "figures"]
    # The sampler's n-gram weight re-runs generate and evaluate, which scores that sampler.
    set_params(project, **{"generate.ngram_weight": 0})
    assert ran(dvc(project, "repro").stdout) == ["generate", "evaluate", "figures"]
    assert "lstm_ngram" not in json.loads((project / "metrics/eval.json").read_text())
    set_params(project, **{"generate.ngram_weight": 0.25})
    assert ran(dvc(project, "repro").stdout) == ["generate", "evaluate", "figures"]

    # An evaluate param re-runs evaluate only. Without dynamic evaluation the n-gram model is
    # mixed with the static predictions; ngram_order 0 leaves the mixture out.
    set_params(project, **{"evaluate.dynamic_lr": 0})
    assert ran(dvc(project, "repro").stdout) == ["evaluate", "figures"]
    static = json.loads((project / "metrics/eval.json").read_text())
    assert "lstm_dynamic" not in static
    assert static["lstm"] == ev["lstm"] and static["ngram"] == ev["ngram"]
    assert 0 < static["lstm_mix"] < static["lstm"] + 0.05
    set_params(project, **{"evaluate.ngram_order": 0})
    assert ran(dvc(project, "repro").stdout) == ["evaluate", "figures"]
    assert not {"ngram", "lstm_mix"} & set(json.loads((project / "metrics/eval.json").read_text()))
    # max_chars bounds the text every figure scores, the compressors' included, so they compare.
    half = prep["val_chars"] // 2
    set_params(project, **{"evaluate.max_chars": half})
    assert ran(dvc(project, "repro").stdout) == ["evaluate", "figures"]
    run = json.loads((project / "metrics/run/evaluate.json").read_text())
    assert run["val_chars"] == half - 1 and run["held_out_chars"] == prep["val_chars"]
    short = json.loads((project / "metrics/eval.json").read_text())
    assert short["lstm"] != static["lstm"] and short["ppmd16"] != static["ppmd16"]

    # A train param re-runs train and what follows, never download or prepare.
    set_params(project, **{"train.dropout": 0.1})
    assert ran(dvc(project, "repro").stdout) == ["train", "select", "generate", "evaluate", "figures"]

    # An error after Keras is loaded is still one line, and the previous samples survive it.
    before = (project / "samples/samples.json").read_text()
    set_params(project, **{"generate.prompt": "the \u20ac"})
    res = stage(project, "generate")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: prompt has character(s) outside the model's vocabulary: '\u20ac'; remove them "
        f"(the vocabulary has {prep['vocab_size']} characters)"]
    assert (project / "samples/samples.json").read_text() == before
    set_params(project, **{"generate.prompt": ""})

    # A prepare param re-runs prepare but not download.
    set_params(project, **{"prepare.seq_length": 16})
    assert ran(dvc(project, "repro").stdout) == ["prepare", "train", "select", "generate", "evaluate", "figures"]


def test_bad_input_is_one_line_and_nonzero(project):
    # A typo in a section name: check_params stops `dvc repro` before any stage runs.
    set_params(project, **{"trian": {"epochs": 1}})
    res = stage(project, "check_params")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["error: params.yaml: unknown key 'trian'; did you mean 'train'?"]
    res = dvc(project, "repro", check=False)
    assert res.returncode != 0 and "error: params.yaml: unknown key 'trian'" in res.stderr
    assert ran(res.stdout) == [] and not (project / "data/raw").exists()

    # A book that is in no mirror, with the network unreachable.
    p = project / "params.yaml"
    p.write_text(p.read_text().replace("trian:\n  epochs: 1\n", ""))
    set_params(project, **{"download.book": 404})
    res = stage(project, "download")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "could not download" in res.stderr and not (project / "data/raw").exists()

    # A Gutenberg file whose book is empty between its markers.
    from conftest import gutenberg
    set_params(project, **{"download.book": 13})
    mirror = project.parent / MIRROR
    (mirror / "pg13.txt").write_text(gutenberg("\n\n"), encoding="utf-8")
    assert stage(project, "download").returncode == 0
    res = stage(project, "prepare")
    origin = (mirror / "pg13.txt").resolve()
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"error: the Project Gutenberg START and END markers of data/raw/pg13.txt enclose no text (it came "
        f"from {origin}): replace that file with the whole book, or set prepare.strip_gutenberg: false to "
        f"use the file as it is"]
    assert not (project / "data/prepared/dataset.npz").exists()

    # A text shorter than a window plus its validation part.
    set_params(project, **{"download.book": 11, "prepare.seq_length": 5000})
    assert stage(project, "download").returncode == 0
    res = stage(project, "prepare")
    assert res.returncode == 1 and "too short for windows" in res.stderr
    assert not (project / "data/prepared/dataset.npz").exists()


def test_killed_training_resumes_from_the_last_finished_epoch(project):
    set_params(project, **{"train.epochs": 8})
    assert stage(project, "download").returncode == 0 and stage(project, "prepare").returncode == 0
    ckpt = project / "models/checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "stages.train"], cwd=project, env=env_with_venv(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    # Epoch 3's weights exist only after epoch 2 was committed (its history row written).
    while not (ckpt / "epoch_0003.weights.h5").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (ckpt / "epoch_0003.weights.h5").exists()
    out = dvc(project, "repro", "train").stdout
    done_before = int(out.split("resuming from epoch ")[1].split()[0])
    assert done_before >= 2
    hist = (project / "metrics/train_history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in hist] == list(range(1, 9))
    assert f"epoch {done_before}:" not in out  # finished epochs are not trained again


def test_prepare_refuses_or_warns_about_what_would_spoil_the_text(project):
    # A Windows-1252 file declared latin-1: its curly quotes would become C1 control characters.
    text = ("\u201cCurious,\u201d said Alice \u2014 " + make_text(9000, 4)).encode("cp1252")
    (project / "texts/cp1252.txt").write_bytes(text)
    set_params(project, **{"download.text": "texts/cp1252.txt", "prepare.encoding": "latin-1"})
    assert stage(project, "download").returncode == 0
    res = stage(project, "prepare")
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "error: data/raw/target_cp1252.txt read as latin-1 holds control characters U+0093, U+0094, U+0097, "
        "which cp1252 uses for curly quotes and dashes; set prepare.encoding: cp1252"]
    assert not (project / "data/prepared/dataset.npz").exists()
    set_params(project, **{"prepare.encoding": "cp1252"})
    res = stage(project, "prepare")
    assert res.returncode == 0 and res.stderr == ""
    with np.load(project / "data/prepared/dataset.npz", allow_pickle=False) as z:
        assert '"' in set(z["vocab"].tolist()) and not any(0x80 <= ord(c) < 0xA0 for c in z["vocab"].tolist())

    # Long runs of spaces are cut to prepare.max_space_run (0 keeps them).
    padded = "contents" + " " * 300 + "page 1\n" + make_text(9000, 4)
    (project / "texts/padded.txt").write_text(padded, encoding="utf-8")
    set_params(project, **{"download.text": "texts/padded.txt", "prepare.encoding": "utf-8"})
    assert stage(project, "download").returncode == 0 and stage(project, "prepare").returncode == 0
    whole = json.loads((project / "metrics/prepare.json").read_text())["chars"]
    set_params(project, **{"prepare.max_space_run": 8})
    assert stage(project, "prepare").returncode == 0
    assert json.loads((project / "metrics/prepare.json").read_text())["chars"] == whole - 292

    # A Gutenberg book used whole: a warning says its licence lands in the validation split.
    set_params(project, **{"download.text": "", "prepare.strip_gutenberg": False, "prepare.max_space_run": 0})
    assert stage(project, "download").returncode == 0
    res = stage(project, "prepare")
    assert res.returncode == 0 and "prepare.strip_gutenberg is false but data/raw/pg11.txt has Project " \
        "Gutenberg markers" in res.stderr and "licence is where the validation split is" in res.stderr
