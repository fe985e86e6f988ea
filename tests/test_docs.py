"""The docs name only what exists: every repository path in the README's and docs/' inline code,
every `python ...` and `make ...` command they show (a script's or module's `--help` runs), and
every relative link and `#anchor`.

Paths under the folders a run creates (models/, data/, samples/, ...) are not on a fresh clone's
disk, so they are checked against what creates them: the outs in dvc.yaml, and for the few
folders no stage declares, the code that writes them. A renamed output breaks this test as a
renamed script does.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Folders a run (or a documented command) creates; no fresh clone has them.
GENERATED = ("models/", "data/", "samples/", "exports/", "metrics/run/", "dvc_plots/", ".dvc/tmp/",
             ".venv/")
# Where the docs put a user's own files (`texts/notes.md`): only the folder must exist.
USER_FILES = "texts/"
# Generated folders that no dvc.yaml declares: the code that creates each, and the text in it
# that names the folder (a renamed folder no longer matches). Files under them are checked by
# name in the same code.
UNDECLARED = {
    "metrics/run": ("stages", '"metrics/run/'),              # each stage's timings
    "models/checkpoints.prev": ("chargen/checkpoints.py", '".prev"'),  # other params' checkpoints
    "exports": ("chargen/export.py", '"exports"'),            # python -m chargen.export's --out
    "dvc_plots": ("dvc/commands/plots.py", "dvc_plots"),      # dvc plots show's page (DVC's)
    ".dvc/tmp/exps": ("dvc/repo/experiments/utils.py", '"exps"'),  # queued and --temp runs
    ".venv": ("Makefile", "-m venv .venv"),                   # make's virtualenv
}
# The project's own folders, where a bare file name the docs give (`test_scale.py`) may live.
SOURCE_FOLDERS = ("chargen", "stages", "tests", "bench", "docs", "texts", ".ci")
# Paths the docs name on purpose although no project has them: a setting they warn against.
NOT_FILES = {".dvc/site_cache"}
# What a span must end in to be taken for a file name when it has no `/`.
EXTENSIONS = (".py", ".md", ".yaml", ".yml", ".json", ".txt", ".csv", ".svg", ".html", ".lock",
              ".toml", ".ini", ".cfg", ".npz", ".npy", ".keras", ".h5", ".onnx", ".log")


def strip_fences(text: str) -> str:
    """The text with its fenced code blocks blanked (headings and links inside them are code)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def inline_spans(text: str) -> list[str]:
    """Inline code spans outside fenced blocks, line breaks inside a span read as spaces."""
    return [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", strip_fences(text))]


def is_placeholder(span: str) -> bool:
    return bool(re.search(r"[<>*{}\[\]]|NNNN|\.\.\.", span))


def repo_path(span: str) -> str | None:
    """The repository path a code span names, or None when it is not one: commands, dotted
    Python names, params keys, URLs, absolute or outside-the-project paths, placeholders."""
    if re.search(r"\s|://|[=:(),'\"~$]", span) or is_placeholder(span):
        return None
    if span.startswith(("/", "../", "-")) or span in (".", ".."):
        return None
    if "/" in span or span.endswith(EXTENSIONS):
        return span
    return None


def code_text(where: str) -> str:
    """The source text of a folder or file of the project, or of the installed DVC (`dvc/...`)."""
    if where.startswith("dvc/"):
        import dvc

        base = Path(dvc.__file__).parent / where.removeprefix("dvc/")
    else:
        base = ROOT / where
    if not base.exists():
        return ""
    files = [base] if base.is_file() else sorted(
        p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return "\n".join(p.read_text(errors="replace") for p in files)


def declared_outs() -> list[str]:
    """Every out of every dvc.yaml in the project, relative to the project root."""
    outs = []
    for top, folders, files in os.walk(ROOT):
        folders[:] = [f for f in folders if not f.startswith(".") and f + "/" not in GENERATED]
        if "dvc.yaml" not in files:
            continue
        dvc_yaml = Path(top) / "dvc.yaml"
        folder = dvc_yaml.parent.relative_to(ROOT)
        for stage in (yaml.safe_load(dvc_yaml.read_text()).get("stages") or {}).values():
            for out in stage.get("outs", []):
                name = next(iter(out)) if isinstance(out, dict) else out
                outs.append(os.path.normpath(folder / name))
    return outs


def generated_path_problem(path: str, outs: list[str]) -> str | None:
    """Why a path under a generated folder names nothing a run creates (None when it does): it
    must be a declared out, a folder holding one, or a file in one whose name the code writes;
    or be (or lie in) a folder that code creates outside DVC."""
    path = path.rstrip("/")
    code = code_text("chargen") + code_text("stages")
    for out in outs:
        if path == out or out.startswith(path + "/"):
            return None
        if path.startswith(out + "/"):
            missing = [n for n in path[len(out) + 1:].split("/") if n not in code]
            return f"the code writes no {missing} in {out}" if missing else None
    for root, (where, mark) in UNDECLARED.items():
        if path == root or path.startswith(root + "/") or root.startswith(path + "/"):
            inner = path[len(root) + 1:].split("/") if path.startswith(root + "/") else []
            missing = [n for n in [mark, *inner] if n not in code_text(where)]
            return f"{where} has no {missing}" if missing else None
    return "no stage in dvc.yaml writes it (check its outs)"


def all_spans() -> list[tuple[str, str]]:
    return [(doc.relative_to(ROOT).as_posix(), span) for doc in DOCS
            for span in inline_spans(doc.read_text())]


def test_every_path_the_docs_name_exists():
    outs = declared_outs()
    writes = "".join(code_text(where) for where in ("chargen", "stages", ".ci", ".github"))
    project_names = {p.name for p in ROOT.iterdir()} | {
        p.name for folder in SOURCE_FOLDERS for p in (ROOT / folder).rglob("*")}
    problems = []
    for doc, span in dict.fromkeys(all_spans()):
        path = repo_path(span)
        if path is None or path in NOT_FILES:
            continue
        if path.startswith(GENERATED) or path.rstrip("/") + "/" in GENERATED:
            why = generated_path_problem(path, outs)
        elif path.startswith(USER_FILES):
            why = None if (ROOT / USER_FILES).is_dir() else "no such folder"
        elif "/" in path.rstrip("/"):
            why = None if (ROOT / path).exists() else "no such file or folder"
        else:
            # A bare name (`vocab.json`, `savedmodel/`): a file or folder of the project (a test
            # module, `stages/`) or one the code writes.
            path = path.rstrip("/")
            known = path in project_names or path in writes
            why = None if known else "no file of that name, and the code writes none"
        if why:
            problems.append(f"{doc}: `{span}`: {why}")
    assert not problems, "\n".join(problems)


def command_lines(doc: Path) -> list[str]:
    """The command lines a doc shows: inline code spans and lines of fenced blocks, each without
    a `$ ` prompt or a trailing `# comment`, continued lines joined."""
    text = doc.read_text()
    lines = inline_spans(text)
    for block in fenced_blocks(text):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():  # `\` continues a line
            line = re.sub(r"\s+#\s.*$", "", line.strip())
            lines.append(line.removeprefix("$ "))
    return lines


def named_commands() -> dict[tuple[str, str], str]:
    """(kind, target) of each `python -m X`, `python path.py` and `make target` the docs show,
    with the first doc line that shows it. Environment assignments before the command and
    `&&`-chained commands are read through."""
    found = {}
    for doc in DOCS:
        for line in command_lines(doc):
            for part in re.split(r"&&|;|\|", line):
                words = part.split()
                while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
                    words = words[1:]
                if len(words) < 2:
                    continue
                if words[0] in ("python", "python3") and words[1] == "-m" and len(words) > 2:
                    key = ("module", words[2])
                elif words[0] in ("python", "python3") and words[1].endswith(".py"):
                    key = ("script", words[1])
                elif words[0] == "make" and re.fullmatch(r"[\w-]+", words[1]):
                    key = ("make", words[1])
                else:
                    continue
                if not is_placeholder(key[1]):
                    found.setdefault(key, f"{doc.relative_to(ROOT)}: {part.strip()}")
    return found


COMMANDS = named_commands()


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+)\s*:(?!=)", text, flags=re.M))


def test_the_docs_show_commands():
    """The parsing below finds what the docs show (else the checks below check nothing)."""
    kinds = {kind for kind, _ in COMMANDS}
    assert kinds == {"module", "script", "make"}, COMMANDS


@pytest.mark.parametrize("kind,target", sorted(k for k in COMMANDS if k[0] == "make"))
def test_make_target_exists(kind, target):
    assert target in make_targets(), f"{COMMANDS[kind, target]}: the Makefile has no `{target}`"


@pytest.mark.parametrize("kind,target", sorted(k for k in COMMANDS if k[0] != "make"),
                         ids=lambda v: v)
def test_python_command_exists_and_answers_help(kind, target, tmp_path):
    where = COMMANDS[kind, target]
    file = ROOT / (target.replace(".", "/") + ".py" if kind == "module" else target)
    assert file.is_file(), f"{where}: no {kind} {target} ({file.relative_to(ROOT)})"
    if target.startswith("stages."):
        return  # a stage takes no arguments: `python -m stages.X` does its work
    # A script without a parser would take `--help` for a run and do its work.
    has_parser = "ArgumentParser" in file.read_text()
    assert has_parser, f"{where}: {target} parses no arguments, so it has no --help"
    argv = [sys.executable, *(["-m", target] if kind == "module" else [target]), "--help"]
    # A HOME of its own: nothing a command writes at start-up lands in the user's.
    env = {**os.environ, "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / ".keras"),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{where}: `{' '.join(argv[1:])}` exited {res.returncode}:\n{res.stderr[-2000:]}"
    assert "usage" in res.stdout.lower(), f"{where}: `--help` printed no usage:\n{res.stdout[-500:]}"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation other than `-` and
    `_` dropped, each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    """The anchors of a Markdown file's headings; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", strip_fences(doc.read_text()), re.M):
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(doc: Path) -> list[str]:
    """The targets of a doc's links and images that are not web addresses."""
    text = re.sub(r"`[^`]*`", "", strip_fences(doc.read_text()))
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for doc in DOCS:
        for target in links(doc):
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            where = f"{doc.relative_to(ROOT)}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading with that anchor in {dest.name}")
    assert not problems, "\n".join(problems)


def test_github_slug():
    assert github_slug("More model per CPU-minute (issue 24)") == "more-model-per-cpu-minute-issue-24"
    assert github_slug("The tutorial's exact setup") == "the-tutorials-exact-setup"
    assert github_slug("Offline, or behind a firewall") == "offline-or-behind-a-firewall"
    assert github_slug("Sharing data and models: DVC remotes") == "sharing-data-and-models-dvc-remotes"
    assert github_slug("`chargen_x` and [a link](x.md)") == "chargen_x-and-a-link"


def documented_overrides() -> list[tuple[str, str]]:
    """(doc, override) for each `-S`/`--set-param` value of a `dvc exp run` the docs show, as
    the shell passes it to DVC (quotes removed by shlex, as bash removes them)."""
    found = []
    for doc in DOCS:
        for line in command_lines(doc):
            if "dvc exp run" not in line or is_placeholder(line.replace("{id}", "")):
                continue
            words = shlex.split(line)
            found += [(doc.relative_to(ROOT).as_posix(), value)
                      for flag, value in zip(words, words[1:]) if flag in ("-S", "--set-param")]
    return found


def apply_as_dvc_does(params_file: Path, override: str):
    """What `dvc exp run -S override` does to the params file before it runs anything: DVC's own
    grouping by file, its Hydra parser, and its writer."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides

    ((path, parsed),) = to_path_overrides([override]).items()
    assert path == "params.yaml", override
    apply_overrides(params_file, parsed)


def test_every_documented_override_parses():
    """DVC's override grammar reads `{`, `[`, `,` and `(` as structure: every `-S` the docs show
    must get through its parser as the shell passes it."""
    from dvc.utils.hydra import to_hydra_overrides

    overrides = documented_overrides()
    assert len(overrides) > 5, overrides
    problems = []
    for doc, override in overrides:
        try:
            to_hydra_overrides([override])
        except Exception as e:  # noqa: BLE001 - any refusal is the finding
            problems.append(f"{doc}: -S {override!r}: {str(e).splitlines()[0]}")
    assert not problems, "\n".join(problems)


def test_documented_url_template_override_lands_verbatim(tmp_path):
    """The docs show how to set `download.url`, a template with braces, from the command line;
    that quoting puts exactly the template into params.yaml, and chargen accepts it. Without
    the inner quotes DVC's parser stops at the brace."""
    from dvc.utils.hydra import to_hydra_overrides
    from hydra.errors import OverrideParseException

    from chargen.params import load

    urls = [o for _, o in documented_overrides() if o.startswith("download.url=") and "{" in o]
    assert urls, "no doc shows a `-S download.url=...{id}...` override"
    for override in urls:
        template = override.split("=", 1)[1]
        assert template[0] == template[-1] and template[0] in "'\"", f"{override}: not quoted for Hydra"
        template = template[1:-1]
        params_file = tmp_path / "params.yaml"
        params_file.write_text((ROOT / "params.yaml").read_text())
        apply_as_dvc_does(params_file, override)
        assert yaml.safe_load(params_file.read_text())["download"]["url"] == template
        assert "{id}" in load(params_file)["download"]["url"]
        with pytest.raises(OverrideParseException, match="mismatched input '{'"):
            to_hydra_overrides([f"download.url={template}"])
