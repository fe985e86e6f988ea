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


class QuickProgress(Progress):
    MIN_SECONDS = 0.0  # these batches take 0.01 s: estimate from their count alone


def test_plain_lines_and_an_estimate_when_not_a_terminal(capsys):
    lines = []
    fit(QuickProgress(lines.append, every=0.0, tty=False), epochs=3)
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


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run_epoch(progress, clock, epoch, batch_seconds):
    """Drive the callback's hooks through one epoch whose batches take these many seconds."""
    progress.on_epoch_begin(epoch)
    for i, seconds in enumerate(batch_seconds):
        progress.on_train_batch_begin(i)
        clock.now += seconds
        progress.on_train_batch_end(i, {"loss": 1.0})
    progress.on_epoch_end(epoch)


def test_a_slow_first_batch_is_not_extrapolated_to_the_epoch():
    """An epoch whose first batch ends 57 s in and whose others take 0.7 s: no line may say
    `about 2.0 h`; the estimate waits for 10 batches and 5 s after the first, then says what
    the rest of the epoch takes at 0.7 s a batch. The next epoch's first line, before its own
    batches are timed, uses this epoch's rate."""
    clock, lines = FakeClock(), []
    progress = Progress(lines.append, every=0.0, tty=False, clock=clock)
    progress.set_params({"epochs": 3, "steps": 128})
    progress.on_train_begin()
    batches = [57.0] + [0.7] * 127
    run_epoch(progress, clock, 1, batches)
    within = {int(line.split("batch ")[1].split("/")[0]): line for line in lines if line.startswith("  epoch 2:")}
    assert "about" not in within[1] and within[1].endswith("57 s in")  # nothing to extrapolate from yet
    assert not any("about" in within[done] for done in range(2, 11))  # 9 batches in 6.3 s: fewer than 10
    assert within[11].endswith("about 82 s to the end of its training part")  # 117 batches at 0.7 s
    run_epoch(progress, clock, 2, batches)
    first = next(line for line in lines if line.startswith("  epoch 3: batch 1/"))
    assert first.endswith("about 89 s to the end of its training part")  # 127 at the last epoch's 0.7 s


def test_the_run_estimate_waits_for_seconds_not_only_batches():
    """Fast batches (0.1 s) are timed until 5 s have passed, not just 10 of them."""
    clock, lines = FakeClock(), []
    progress = Progress(lines.append, every=3600.0, tty=False, clock=clock)
    progress.set_params({"epochs": 2, "steps": 200})
    progress.on_train_begin()
    run_epoch(progress, clock, 0, [5.0, 5.0] + [0.1] * 198)  # two compiling batches, then 0.1 s each
    timing = [line for line in lines if line.startswith("timing:")]
    assert timing == ["timing: 0.100 s per batch, so about 20 s per epoch of 200 batches and 40 s for the "
                      "2 epochs to go, plus validation (this machine)"]


def test_duration_reads_at_a_glance():
    assert [duration(s) for s in (45, 450, 9000)] == ["45 s", "7.5 min", "2.5 h"]
