"""Training says how long it will take and shows progress within an epoch: a plain line every
few seconds when the output is not a terminal (CI logs), Keras' progress bar when it is."""

import numpy as np

from chargen.callbacks import Progress, duration
from chargen.quiet import keras


class SlowBatches(keras.utils.PyDataset):
    """Enough batches for the warm-up and the timed ones, each taking a little while."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        import time
        time.sleep(0.01)
        rng = np.random.default_rng(i)
        return rng.standard_normal((4, 3)).astype("float32"), rng.standard_normal((4, 1)).astype("float32")


def fit(progress, epochs=2):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(SlowBatches(), epochs=epochs, verbose=0, callbacks=[progress])


def test_plain_lines_and_an_estimate_when_not_a_terminal(capsys):
    lines = []
    fit(Progress(lines.append, every=0.0, tty=False), epochs=3)
    timing = [line for line in lines if line.startswith("timing:")]
    assert len(timing) == 1, lines  # said once, after the first epoch's timed batches
    assert "per epoch of 16 batches" in timing[0] and "for the 3 epochs to go" in timing[0]
    within = [line for line in lines if line.startswith("  epoch ")]
    assert any("epoch 1: batch 1/16" in line for line in within) and any("epoch 3:" in line for line in within)
    assert not any("batch 16/16" in line for line in within)  # the epoch's own line says it ended
    left = [line for line in lines if line.startswith("  at most")]
    assert len(left) == 2 and "2 epochs at" in left[0] and "1 epoch at" in left[1]
    assert "\r" not in capsys.readouterr().out  # no progress bar in a log


def test_lines_are_spaced_in_time():
    lines = []
    fit(Progress(lines.append, every=3600.0, tty=False), epochs=1)
    assert not [line for line in lines if line.startswith("  epoch ")]


def test_progress_bar_on_a_terminal(capsys):
    lines = []
    fit(Progress(lines.append, every=0.0, tty=True), epochs=1)
    out = capsys.readouterr().out
    assert "16/16" in out  # Keras' Progbar, on stdout
    assert not [line for line in lines if line.startswith("  epoch ")]


def test_duration_reads_at_a_glance():
    assert [duration(s) for s in (45, 450, 9000)] == ["45 s", "7.5 min", "2.5 h"]
