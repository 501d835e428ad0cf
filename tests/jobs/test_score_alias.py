"""`driftline score MODEL@ALIAS`: the alias is read from the server's store and fixed as a version number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from driftline.cli.main import main
from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore


@pytest.fixture
def store_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "driftline.db"
    db = open_database(path)
    DeploymentStore(db).move_alias("iris", "champion", 1, None)
    DeploymentStore(db).move_alias("iris", "staging", 2, 1)
    db.close()
    monkeypatch.setenv("DRIFTLINE_DATABASE", str(path))
    return path


def score(repo: Path, tmp_path: Path, ref: str, out: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    data = pl.DataFrame({f"f{i}": np.random.default_rng(i).normal(5, 1, 50).astype(np.float32) for i in range(4)})
    data.write_parquet(tmp_path / "in.parquet")
    args = ["--repository", str(repo), "--output", str(tmp_path / out), "--quiet"]
    code = main(["score", ref, str(tmp_path / "in.parquet"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_alias_and_default_alias_resolve_from_the_store(repo, tmp_path, store_db, capsys):
    code, out, _ = score(repo, tmp_path, "iris@staging", "a", capsys)
    assert code == 0
    assert json.loads(out.splitlines()[-1])["version"] == 2
    # No version: the default alias (champion = 1), as a request without a version would meet, not the newest.
    code, out, _ = score(repo, tmp_path, "iris", "b", capsys)
    assert code == 0
    assert json.loads(out.splitlines()[-1])["version"] == 1
    code, out, _ = score(repo, tmp_path, "iris:2", "c", capsys)
    assert json.loads(out.splitlines()[-1])["version"] == 2


def test_unknown_alias_is_a_one_line_error(repo, tmp_path, store_db, capsys):
    code, _, err = score(repo, tmp_path, "iris@nope", "d", capsys)
    assert code == 2
    assert err.strip() == "driftline: error: model 'iris' has no alias 'nope' (aliases: champion=1, staging=2)"
    code, _, err = score(repo, tmp_path, "iris@", "e", capsys)
    assert code == 2
    assert "NAME@ALIAS" in err
