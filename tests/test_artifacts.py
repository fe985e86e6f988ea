"""The selected model as a DVC artifact, fetched by name from a local git repository whose data
is only in its local-folder remote; and the evaluate stage's surprisal view, from a real run."""

import shutil

from chargen import api
from conftest import dvc, git

FILES = ["config.json", "model.keras", "train_ids.npy", "vocab.json"]


def test_artifact_get_and_surprisal_view(project, tmp_path):
    dvc(project, "repro")
    page = (project / "metrics/surprisal.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "bits per character" in page and "&ge;8 bits" in page
    assert page.count('<span class="b') > 1000 and len(page) < 400_000  # the first 5,000 chars at most

    store = tmp_path / "store"
    dvc(project, "remote", "add", "-d", "store", str(store))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "trained, with a remote")
    # DVC 3.67 finds an artifact's versions by GTO-style git tags (name@vX.Y.Z); with none,
    # `dvc artifacts get` answers "Unable to find artifact". `gto register` makes the same tag.
    git(project, "tag", "-a", "chargen-model@v0.1.0", "-m", "Registering artifact chargen-model version v0.1.0")
    dvc(project, "push")
    best = {name: (project / "models/best" / name).read_bytes() for name in FILES}
    # Only the remote has the data now: no cache, no working copy.
    shutil.rmtree(project / ".dvc/cache")
    shutil.rmtree(project / "models/best")

    out = tmp_path / "got"
    dvc(tmp_path, "artifacts", "get", str(project), "chargen-model", "-o", str(out))
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert {name: (out / name).read_bytes() for name in FILES} == best
    assert len(api.load(out).generate("the", length=20)[0]) == 20
    dvc(tmp_path, "artifacts", "get", str(project), "chargen-model", "--rev", "v0.1.0", "-o", str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "model.keras").read_bytes() == best["model.keras"]
