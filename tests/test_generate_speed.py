"""bench/generate_speed.py's arguments and its tables (the timings themselves are the bench's)."""

import pytest

from bench import generate_speed


def test_bad_arguments_get_one_error_line():
    for argv, flag in ((["--load", "-1"], "--load"), (["--streams", "0"], "--streams"),
                       (["--repeat", "0"], "--repeat")):
        with pytest.raises(SystemExit) as stop:
            generate_speed.arguments(argv)
        assert str(stop.value).startswith(f"error: {flag} is ") and "\n" not in str(stop.value)


def test_the_table_gives_the_default_samplers_share_and_the_slowdown_under_load():
    rates = {"tutorial": 2.0, "window": 10.0, "lstm_1": 1000.0, "mixed_1": 900.0, "lstm_8": 4000.0, "mixed_8": 3000.0}
    figures = {"model": "random", "streams": 8, "chars_per_s": rates, "mixed_vs_lstm": {"1": 0.9, "8": 0.75}}
    text = generate_speed.render_table({"figures": figures, "load_before": 0.5})
    assert "| stateful + n-gram (the default sampler), 8 streams | 3,000 | 1,500x | 300x |" in text
    assert "0.90 of the LSTM step's rate on one stream and 0.75 on 8" in text
    assert "busy processes" not in text
    figures.update(busy_processes=2, chars_per_s_loaded={k: v / 2 for k, v in rates.items() if "_" in k},
                   slowdown_loaded={k: 2.0 for k in rates if "_" in k})
    text = generate_speed.render_table({"figures": figures})
    assert "| the default sampler, 1 stream | 900 | 450 | 2.0x |" in text
