"""A self-contained HTML page of a text coloured by the model's surprisal, character by character,
so one can see where the model is confident (pale) and where it is surprised (dark red)."""

from __future__ import annotations

import html

import numpy as np

# Colour bins in bits: a character of 0-1 bit is nearly white, one of 8 bits or more full red.
EDGES = [1, 2, 3, 4, 6, 8]
COLOURS = ["#ffffff", "#fde0dd", "#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15"]
STYLE = """body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
pre{font:15px/1.5 monospace;white-space:pre-wrap;word-wrap:break-word}
pre span{border-radius:2px}.legend span{display:inline-block;padding:0 .6em;font:13px monospace}
""" + "".join(f".b{i}{{background:{c}}}" for i, c in enumerate(COLOURS)) + ".b5,.b6{color:#fff}.na{color:#888}\n"


def _legend() -> str:
    labels = [f"&lt;{EDGES[0]}"] + [f"{a}-{b}" for a, b in zip(EDGES, EDGES[1:])] + [f"&ge;{EDGES[-1]}"]
    return "".join(f'<span class="b{i}">{lab} bits</span>' for i, lab in enumerate(labels))


def _skipped_note(skipped: int) -> str:
    if not skipped:
        return ""
    return (f" {skipped:,} character{'s' if skipped > 1 else ''} outside the model's vocabulary "
            f"{'are' if skipped > 1 else 'is'} not scored (grey): the model reads the text without them, "
            f"its state carried from the character before each straight to the one after.")


def surprisal_html(text: str, bits, *, title: str, limit: int = 5000, skipped: int = 0) -> str:
    """The page for the first `limit` characters of `text`; bits[i] is character i's surprisal
    (NaN where unscored: shown grey). Each character's value is in its tooltip. `skipped`: how
    many characters the model skipped as outside its vocabulary (chargen.api.Score), said on top."""
    bits = np.asarray(bits, dtype="float64")
    n = min(limit, len(text))
    scored = bits[:len(text)][~np.isnan(bits[:len(text)])]
    bins = np.digitize(np.nan_to_num(bits[:n], nan=0.0), EDGES)
    parts = []
    for ch, b, v in zip(text[:n], bins, bits[:n]):
        esc = html.escape(ch)
        parts.append(f'<span class="na">{esc}</span>' if np.isnan(v) else
                     f'<span class="b{b}" title="{v:.2f}">{esc}</span>')
    mean = f"{scored.mean():.3f}" if len(scored) else "n/a"
    shown = f"the first {n:,} of {len(text):,} characters" if n < len(text) else f"all {n:,} characters"
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p>Surprisal of each character given all text before it: -log2 P(char), in bits. "
            f"Mean {mean} bits per character over {len(scored):,} scored characters; "
            f"showing {shown}. Hover a character for its value.{_skipped_note(skipped)}</p>\n"
            f'<p class="legend">{_legend()} <span class="na">grey: not scored</span></p>\n'
            f"<pre>{''.join(parts)}</pre>\n</body></html>\n")
