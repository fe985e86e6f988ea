"""What docs/pipeline.md says of `dvc plots show` offline: DVC's page loads the interactive
charts' library from a CDN, and a page template of one's own decides which scripts load."""

from conftest import ROOT


def scripts(html: str) -> list[str]:
    return [part.split('"')[1] for part in html.split("<script src=")[1:]]


def test_the_charts_load_from_a_cdn_unless_a_template_says_otherwise(tmp_path):
    from dvc_render import VegaRenderer, render_html

    point = {"epoch": 1, "val_bpc": 2.0, "rev": "workspace", "filename": "h.csv", "field": "val_bpc"}
    chart = VegaRenderer([point], "loss", x="epoch", y="val_bpc", template="linear")
    render_html([chart], tmp_path / "default" / "index.html")
    loaded = scripts((tmp_path / "default" / "index.html").read_text())
    assert loaded and all(src.startswith("https://cdn.jsdelivr.net/") for src in loaded)
    docs = (ROOT / "docs" / "pipeline.md").read_text()
    assert "cdn.jsdelivr.net" in docs and "--html-template" in docs  # the docs say so, and the way out

    page = tmp_path / "page.html"
    page.write_text('<html><head><script src="vega/vega.js"></script><script src="vega/vega-lite.js"></script>'
                    '<script src="vega/vega-embed.js"></script></head><body>{plot_divs}</body></html>')
    render_html([chart], tmp_path / "offline" / "index.html", html_template=page)
    html = (tmp_path / "offline" / "index.html").read_text()
    assert scripts(html) == ["vega/vega.js", "vega/vega-lite.js", "vega/vega-embed.js"]
    assert "vegaEmbed(" in html  # the chart itself is there
