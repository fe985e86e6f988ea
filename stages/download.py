"""download: fetch the text(s) into data/raw/ byte for byte, with a source record.

The target is a Project Gutenberg ebook (`download.book`) or a text file of your own
(`download.text`: a path or an http(s) URL); `extra_books` and `extra_texts` add training-only
text. data/raw/source.json lists every file with its source (as params.yaml names it), role, sha256
and size: nothing of this machine, so the same bytes give the same output hash anywhere.
Where each file was read from (a mirror, the cache or the network, as an absolute path or URL)
goes to metrics/run/download.json, this machine's record, which DVC does not hash.
"""

from pathlib import Path

from chargen.download import fetch_book, fetch_text, safe_name, sha256
from chargen.io import ChargenError, atomic_path, run_stage, write_json
from chargen.params import load as read_params

OUT = Path("data/raw")
RUN = Path("metrics/run/download.json")  # where each file was read from: not an output DVC hashes


def sources(cfg: dict) -> list[dict]:
    """What to fetch, target first: [{kind, id|source, role}]."""
    items = []
    if cfg["text"]:
        items.append({"kind": "text", "source": cfg["text"], "role": "target"})
    else:
        items.append({"kind": "gutenberg", "book": cfg["book"], "role": "target"})
    target_book = None if cfg["text"] else cfg["book"]
    items += [{"kind": "gutenberg", "book": b, "role": "extra"}
              for b in dict.fromkeys(cfg["extra_books"]) if b != target_book]
    items += [{"kind": "text", "source": t, "role": "extra"}
              for t in dict.fromkeys(cfg["extra_texts"]) if t != cfg["text"]]
    return items


def main():
    cfg = read_params()["download"]
    records, origins, names = [], [], set()
    with atomic_path(OUT) as tmp:
        tmp.mkdir()
        for it in sources(cfg):
            if it["kind"] == "gutenberg":
                name = f"pg{it['book']}.txt"
                label = cfg["url"].replace("{id}", str(it["book"]))
            else:
                name = f"{it['role']}_{safe_name(it['source'])}"
                label = it["source"]
            if name in names:
                raise ChargenError(f"two texts would both be saved as data/raw/{name}; rename one of them")
            names.add(name)
            if it["kind"] == "gutenberg":
                data, origin = fetch_book(it["book"], cfg)
                (tmp / name).write_bytes(data)
                digest, size = sha256(data), len(data)
            else:
                digest, size, origin = fetch_text(it["source"], cfg, tmp / name)
            via = "network" if origin.startswith(("http://", "https://")) else "local file, mirror or cache"
            records.append({
                "kind": it["kind"],
                "book": it.get("book"),
                "file": name,
                "source": label,
                "sha256": digest,
                "bytes": size,
                "role": it["role"],
            })
            origins.append({"file": name, "fetched_via": via, "origin": origin})
            print(f"{name}: {size:,} bytes via {via} ({origin})")
        write_json(tmp / "source.json", {"books": records})
    write_json(RUN, {"books": origins})


if __name__ == "__main__":
    run_stage(main)
