"""generate: sample text from models/best into samples/, measure it into metrics/generate.json."""

import io
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chargen.api import load
from chargen.dataset import decode, load_dataset, random_prompts
from chargen.io import ChargenError, atomic_path, params_path, run_stage, write_json, write_text
from chargen.params import load as read_params
from chargen.sample_stats import quality, words

MODEL = Path("models/best")
DATASET = Path("data/prepared/dataset.npz")
OUT = Path("samples")
METRICS = Path("metrics/generate.json")
QUALITY = Path("metrics/generate_quality.csv")  # one row per temperature, for `dvc plots`
RUN = Path("metrics/run/generate.json")  # timings: not an output DVC compares
QUALITY_FIELDS = ["temperature", "real_word_share", "distinct_2", "distinct_3", "longest_repeat",
                  "longest_copy"]


def main():
    p = read_params()
    cfg, seed = p["generate"], p["seed"]
    gen = load(MODEL)
    ds = load_dataset(DATASET)
    prompt = cfg["prompt"]
    if cfg["prompt_file"]:
        try:
            prompt = params_path(cfg["prompt_file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChargenError(f"cannot read generate.prompt_file {cfg['prompt_file']}: "
                               f"{getattr(exc, 'strerror', None) or exc}; fix the path or the file") from None
    if prompt:
        prompts = np.tile(gen.encode(prompt), (cfg["samples"], 1))
    else:
        prompts = random_prompts(ds["val_ids"], cfg["samples"], gen.seq_length, seed)
    train_text = decode(ds["train_ids"], ds["vocab"])
    train_words = set(words(train_text))
    temps = cfg["temperature"] if isinstance(cfg["temperature"], list) else [cfg["temperature"]]

    records, metrics, rows, speed, total_chars, total_secs = [], {}, [], {}, 0, 0.0
    for temp in temps:
        t0 = time.perf_counter()
        texts = gen.generate(prompts, length=cfg["length"], temperature=float(temp), top_k=cfg["top_k"],
                             top_p=cfg["top_p"], samples=len(prompts), seed=seed, method=cfg["method"],
                             ngram_weight=cfg["ngram_weight"], ngram_order=cfg["ngram_order"])
        secs = time.perf_counter() - t0
        total_chars += len(texts) * cfg["length"]
        total_secs += secs
        q = quality(texts, train_text, train_words)
        key = f"temp_{temp:g}".replace(".", "_")
        metrics[key] = q
        speed[key] = round(len(texts) * cfg["length"] / secs, 1)
        rows.append({"temperature": temp, **q})
        for i, text in enumerate(texts):
            records.append({"temperature": temp, "seed": seed + i, "method": cfg["method"],
                            "ngram_weight": cfg["ngram_weight"], "ngram_order": cfg["ngram_order"],
                            "top_k": cfg["top_k"], "top_p": cfg["top_p"], "length": cfg["length"],
                            "prompt": decode(prompts[i], gen.vocab), "text": text})
        print(f"temperature {temp:g}: {q}, {speed[key]:,.0f} chars/s")

    with atomic_path(OUT) as tmp:
        tmp.mkdir()
        write_json(tmp / "samples.json", records)
        with open(tmp / "samples.txt", "w", encoding="utf-8") as fh:
            for n, r in enumerate(records, 1):
                fh.write(f"=== sample {n}: temperature {r['temperature']:g}, seed {r['seed']}, "
                         f"method {r['method']}\n--- prompt:\n{r['prompt']}\n--- generated:\n{r['text']}\n\n")
    table = io.StringIO()
    pd.DataFrame(rows, columns=QUALITY_FIELDS).to_csv(table, index=False, lineterminator="\n")
    write_text(QUALITY, table.getvalue())
    write_json(METRICS, {"samples": len(records), "chars": total_chars, **metrics})
    write_json(RUN, {"chars_per_second": round(total_chars / total_secs, 1), "per_temperature": speed})


if __name__ == "__main__":
    run_stage(main)
