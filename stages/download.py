"""download: fetch the Gutenberg book(s) into data/raw/ byte for byte, with a source record."""

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import params  # noqa: E402
from chargen.corpus import fetch_book, sha256  # noqa: E402
from chargen.io import atomic_path, run_stage, write_json  # noqa: E402

OUT = Path("data/raw")


def main():
    cfg = params.load()["download"]
    books = [cfg["book"]] + [b for b in cfg["extra_books"] if b != cfg["book"]]
    records = []
    with atomic_path(OUT) as tmp:
        tmp.mkdir()
        for book in books:
            data, origin = fetch_book(book, cfg)
            (tmp / f"pg{book}.txt").write_bytes(data)
            via = "network" if origin.startswith(("http://", "https://")) else "mirror or cache"
            records.append({
                "book": book,
                "file": f"pg{book}.txt",
                "url": cfg["url"].replace("{id}", str(book)),
                "fetched_via": via,
                "sha256": sha256(data),
                "bytes": len(data),
                "role": "target" if book == cfg["book"] else "extra",
            })
            print(f"pg{book}.txt: {len(data):,} bytes via {via} ({origin})")
        write_json(tmp / "source.json", {"books": records})


if __name__ == "__main__":
    run_stage(main)
