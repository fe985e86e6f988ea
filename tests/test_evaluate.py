import numpy as np

from chargen import evaluate
from conftest import make_text


def test_conditional_compression_rewards_text_seen_in_training():
    train = make_text(20_000, 5)
    seen = train[5_000:7_000]           # validation text the compressors have already seen
    fresh = make_text(2_000, 6)        # same style, new text
    for name, fn in evaluate.COMPRESSORS.items():
        a = evaluate.conditional_bpc(fn, train, seen)
        b = evaluate.conditional_bpc(fn, train, fresh)
        assert 0 <= a < b < 8, name


def test_all_compressors_reported():
    r = evaluate.compressor_bpc(make_text(5000, 1), make_text(1000, 2))
    assert set(r) == {"gzip", "bzip2", "xz", "ppmd6", "ppmd16"}


def test_dynamic_evaluation_scores_before_it_learns():
    from test_sampling import random_model

    from chargen.model import numpy_weights
    from chargen.numpy_lstm import StepLSTM

    model = random_model(3, dropout=0.3)
    before = [w.copy() for w in model.get_weights()]
    ids = np.tile(np.random.default_rng(0).integers(0, 11, 40), 8)  # a text that repeats itself
    static, n = evaluate.model_bpc(StepLSTM(numpy_weights(model)), ids)
    # A vanishing step size is the static one-stream score: state carried, nothing learnt, no dropout.
    tiny, m = evaluate.dynamic_bpc(model, ids, 1e-9, 16)
    assert m == n and abs(tiny - static) < 1e-4
    # Learning while reading pays off on a text that repeats, and leaves the model untouched.
    learnt, _ = evaluate.dynamic_bpc(model, ids, 0.5, 16)
    assert learnt < static - 0.1
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
