from chargen import evaluate as E
from conftest import make_text


def test_conditional_compression_rewards_text_seen_in_training():
    train = make_text(20_000, 5)
    seen = train[5_000:7_000]           # validation text the compressors have already seen
    fresh = make_text(2_000, 6)        # same style, new text
    for name, fn in E.COMPRESSORS.items():
        a = E.conditional_bpc(fn, train, seen)
        b = E.conditional_bpc(fn, train, fresh)
        assert 0 <= a < b < 8, name


def test_all_compressors_reported():
    r = E.compressor_bpc(make_text(5000, 1), make_text(1000, 2))
    assert set(r) == {"gzip", "bzip2", "xz", "ppmd6", "ppmd16"}
