"""The NumPy stateful sampler against the Keras model, and the sampling controls."""

import numpy as np
import pytest

from chargen import model
from chargen import numpy_lstm, sample_stats, sampling

V = 11


def cfg(**kw):
    c = dict(objective="sequence", input="embedding", embedding_dim=6, layers=2, units=8, dropout=0.1,
             learning_rate=0.01, lr_schedule="constant", clipnorm=1.0, epochs=1)
    c.update(kw)
    return c


def random_model(seed=0, **kw):
    import keras
    keras.utils.set_random_seed(seed)
    m = model.build(V, cfg(**kw))
    # Larger random weights than the initialiser's, so the outputs differ clearly between inputs.
    m.set_weights([w * 3 if w.ndim > 1 and "embed" not in n.path else w
                   for w, n in zip(m.get_weights(), m.weights)])
    return m


@pytest.mark.parametrize("mode", ["embedding", "onehot", "scaled"])
def test_numpy_step_equals_keras_at_every_position(mode):
    m = random_model(input=mode)
    ids = np.random.default_rng(0).integers(0, V, size=(3, 12))
    keras_logits = np.asarray(m(ids.astype("int32"), training=False))
    step = numpy_lstm.StepLSTM(model.numpy_weights(m))
    state = step.zero_state(3)
    for t in range(ids.shape[1]):
        logits, state = step.step(ids[:, t], state)
        np.testing.assert_allclose(logits, keras_logits[:, t], rtol=1e-4, atol=1e-4)


def test_frozen_inputs_are_what_the_tutorial_feeds():
    m = random_model(input="scaled")
    np.testing.assert_allclose(m.get_layer("embed").get_weights()[0][:, 0], np.arange(V) / V)
    assert not m.get_layer("embed").trainable
    m = random_model(input="onehot")
    np.testing.assert_allclose(m.get_layer("embed").get_weights()[0], np.eye(V))


def test_last_objective_outputs_one_prediction_per_window():
    m = random_model(objective="last", layers=1)
    out = m(np.zeros((4, 7), "int32"))
    assert tuple(out.shape) == (4, V)


def test_stateful_and_window_give_the_same_next_char_distribution():
    m = random_model()
    step = numpy_lstm.StepLSTM(model.numpy_weights(m))
    history = np.random.default_rng(1).integers(0, V, size=(2, 9))
    logits_state, _ = step.feed(history)
    logits_window = np.asarray(m(history.astype("int32"), training=False))[:, -1]
    np.testing.assert_allclose(sampling.probabilities(logits_state, 1.0), sampling.probabilities(logits_window, 1.0),
                               rtol=1e-4, atol=1e-6)
    # And as whole samples: greedy decoding agrees while the window still covers all history.
    a = sampling.sample_stateful(step, history, 5, temperature=0)
    b = sampling.sample_window(m, history, 5, seq_length=100, temperature=0)
    assert (a == b).all()


def test_temperature_near_zero_is_argmax():
    logits = np.random.default_rng(2).normal(size=(5, V))
    p = sampling.probabilities(logits, 1e-4)
    assert (p.argmax(1) == logits.argmax(1)).all() and np.allclose(p.max(1), 1.0)
    assert (sampling.probabilities(logits, 0).argmax(1) == logits.argmax(1)).all()


def test_top_k_never_leaves_the_k_most_likely():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, V))
    p = sampling.probabilities(logits, 1.5, top_k=3)
    top3 = np.argsort(-logits, axis=1)[:, :3]
    drawn = sampling.draw(p, sampling.uniforms(0, 200, 1)[0])
    assert all(d in row for d, row in zip(drawn, top3))
    assert ((p > 0).sum(1) == 3).all()


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert np.count_nonzero(sampling.probabilities(logits, 1.0, top_p=0.5)) == 1
    assert np.count_nonzero(sampling.probabilities(logits, 1.0, top_p=0.79)) == 2
    assert np.count_nonzero(sampling.probabilities(logits, 1.0, top_p=0.81)) == 3


def test_same_seed_same_sample_and_streams_are_independent():
    step = numpy_lstm.StepLSTM(model.numpy_weights(random_model()))
    prompts = np.zeros((3, 4), np.int64)
    a = sampling.sample_stateful(step, prompts, 50, temperature=1.0, seed=7)
    b = sampling.sample_stateful(step, prompts, 50, temperature=1.0, seed=7)
    c = sampling.sample_stateful(step, prompts, 50, temperature=1.0, seed=8)
    assert (a == b).all() and not (a == c).all()
    # Stream i is seeded with seed + i: stream 1 of the batch is stream 0 of a run seeded 8.
    single = sampling.sample_stateful(step, prompts[:1], 50, temperature=1.0, seed=8)
    assert (single[0] == a[1]).all()


def test_threaded_groups_give_the_same_samples():
    """64 streams sampled as 1, 2 or 4 thread groups (BLAS held to one thread) are the same samples."""
    from threadpoolctl import threadpool_info

    assert [g.stop - g.start for g in numpy_lstm.stream_groups(64, 2)] == [32, 32]
    assert len(numpy_lstm.stream_groups(20, 8)) == 1 and len(numpy_lstm.stream_groups(64, 16)) == 4
    step = numpy_lstm.StepLSTM(model.numpy_weights(random_model(units=64, layers=1)))
    prompts = np.random.default_rng(0).integers(0, V, size=(64, 6))
    before = [i["num_threads"] for i in threadpool_info()]
    runs = [sampling.sample_stateful(step, prompts, 40, temperature=0.9, seed=3, threads=n) for n in (1, 2, 4)]
    assert all((r == runs[0]).all() for r in runs[1:])
    assert [i["num_threads"] for i in threadpool_info()] == before  # the BLAS limit is lifted afterwards


def test_measures():
    assert sample_stats.longest_repeat("abcXabcYab") == 3
    assert sample_stats.longest_repeat("aaaa") == 3
    assert sample_stats.longest_repeat("abc") == 0
    assert sample_stats.longest_copy("zzhello worldzz", "say hello world now") == 11
    q = sample_stats.quality(["the cat sat the cat sat", "zzq the"], "the cat sat on a mat")
    assert q["real_word_share"] == round(7 / 8, 4)
    assert q["longest_copy"] == len("the cat sat ")
    assert 0 < q["distinct_2"] <= 1


def test_stream_loss_is_the_cross_entropy_of_one_continuous_pass():
    import keras

    m = random_model()
    ids = np.random.default_rng(4).integers(0, V, size=41)
    logits = np.asarray(m(ids[None, :-1].astype("int32"), training=False))[0]
    expect = float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(ids[1:], logits, from_logits=True)))
    step = numpy_lstm.StepLSTM(model.numpy_weights(m))
    loss, n = step.stream_loss(ids, streams=1)
    assert n == 40 and abs(loss - expect) < 1e-4
    # Four streams score the same chars, each piece starting cold: a different, finite figure.
    loss4, n4 = step.stream_loss(ids, streams=4)
    assert n4 == 40 and np.isfinite(loss4) and abs(loss4 - loss) > 1e-6


def test_blas_warm_up_runs_once_per_thread_and_changes_no_result():
    import threading
    step = numpy_lstm.StepLSTM(model.numpy_weights(random_model()))
    ids = np.random.default_rng(4).integers(0, V, size=(16, 20))
    results = {}

    def run(name, pretend_warm):
        if pretend_warm:
            numpy_lstm._warmed.done = True  # this thread skips the warm-up
        results[name] = (step.feed(ids)[0], getattr(numpy_lstm._warmed, "done", False))

    for name, pretend in (("cold", True), ("warm", False)):
        t = threading.Thread(target=run, args=(name, pretend))
        t.start()
        t.join()
    assert results["warm"][1], "a fresh thread's first step should have run the warm-up"
    np.testing.assert_array_equal(results["cold"][0], results["warm"][0])


def test_one_blas_thread_while_sampling_or_scoring_any_number_of_streams():
    """A step's products are too small to share between BLAS threads (a busy machine then makes
    every step wait for the scheduler), so sampling one stream and scoring streams (select's
    stream_loss, evaluate's one stream) hold BLAS to one thread too, and lift the limit after."""
    from threadpoolctl import threadpool_info

    from chargen import evaluate

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    class Recording(numpy_lstm.StepLSTM):
        seen = []

        def step(self, ids, state):
            self.seen.append(max(blas_threads()))
            return super().step(ids, state)

    step = Recording(model.numpy_weights(random_model()))
    before = blas_threads()
    sampling.sample_stateful(step, np.zeros((1, 3), np.int64), 4, temperature=1.0)
    step.stream_loss(np.arange(30) % V, streams=4)
    evaluate.model_probs(step, np.arange(10) % V)
    assert len(step.seen) == (3 + 3) + 7 + 9 and set(step.seen) == {1}  # feed, steps; 4 streams of 7; 9
    assert blas_threads() == before
