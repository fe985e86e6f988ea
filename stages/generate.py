"""generate: sample text from models/best into samples/, measure it into metrics/generate.json."""

import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import params  # noqa: E402
from chargen.io import ChargenError, atomic_path, params_path, run_stage, write_json, write_text  # noqa: E402

MODEL = Path("models/best")
DATASET = Path("data/prepared/dataset.npz")
OUT = Path("samples")
METRICS = Path("metrics/generate.json")
QUALITY = Path("metrics/generate_quality.csv")  # one row per temperature, for `dvc plots`
QUALITY_FIELDS = ["temperature", "real_word_share", "distinct_2", "distinct_3", "longest_repeat",
                  "longest_copy", "chars_per_second"]


def main():
    p = params.load()
    cfg, seed = p["generate"], p["seed"]
    import numpy as np

    from chargen import data as D
    from chargen import sampling as S
    from chargen.generate import Generator

    gen = Generator(MODEL)
    ds = D.load_dataset(DATASET)
    prompt = cfg["prompt"]
    if cfg["prompt_file"]:
        try:
            prompt = params_path(cfg["prompt_file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChargenError(f"cannot read generate.prompt_file {cfg['prompt_file']}: "
                               f"{getattr(exc, 'strerror', None) or exc}; fix the path or the file") from None
    if prompt:
        prompts = np.tile(gen.encode_prompt(prompt), (cfg["samples"], 1))
    else:
        prompts = D.random_prompts(ds["val_ids"], cfg["samples"], gen.seq_length, seed)
    train_text = D.decode(ds["train_ids"], ds["vocab"])
    train_words = set(S.words(train_text))
    temps = cfg["temperature"] if isinstance(cfg["temperature"], list) else [cfg["temperature"]]

    records, metrics, rows, total_chars, total_secs = [], {}, [], 0, 0.0
    for temp in temps:
        t0 = time.perf_counter()
        texts = gen.sample(prompts, length=cfg["length"], temperature=float(temp), top_k=cfg["top_k"],
                           top_p=cfg["top_p"], seed=seed, method=cfg["method"])
        secs = time.perf_counter() - t0
        total_chars += len(texts) * cfg["length"]
        total_secs += secs
        q = S.quality(texts, train_text, train_words)
        q["chars_per_second"] = round(len(texts) * cfg["length"] / secs, 1)
        metrics[f"temp_{temp:g}".replace(".", "_")] = q
        rows.append({"temperature": temp, **q})
        for i, text in enumerate(texts):
            records.append({"temperature": temp, "seed": seed + i, "method": cfg["method"],
                            "top_k": cfg["top_k"], "top_p": cfg["top_p"], "length": cfg["length"],
                            "prompt": D.decode(prompts[i], gen.vocab), "text": text})
        print(f"temperature {temp:g}: {q}")

    with atomic_path(OUT) as tmp:
        tmp.mkdir()
        write_json(tmp / "samples.json", records)
        with open(tmp / "samples.txt", "w", encoding="utf-8") as fh:
            for n, r in enumerate(records, 1):
                fh.write(f"=== sample {n}: temperature {r['temperature']:g}, seed {r['seed']}, "
                         f"method {r['method']}\n--- prompt:\n{r['prompt']}\n--- generated:\n{r['text']}\n\n")
    write_text(QUALITY, ",".join(QUALITY_FIELDS) + "\n" + "".join(
        ",".join(str(r[k]) for k in QUALITY_FIELDS) + "\n" for r in rows))
    write_json(METRICS, {"samples": len(records), "chars": total_chars,
                         "chars_per_second": round(total_chars / total_secs, 1), **metrics})


if __name__ == "__main__":
    run_stage(main)
