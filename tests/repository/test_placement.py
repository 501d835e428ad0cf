"""Placing registry versions in the repository: atomic, on record per source, moved aside on failure or deletion."""

from __future__ import annotations

from pathlib import Path

from driftline.repository import Repository
from driftline.repository.placement import Placement

SOURCE = "file:///registry"


def fetched(tmp_path: Path, config: str | None = None) -> Path:
    """A folder as the cache holds a verified version: the artifact, maybe a config.toml beside it."""
    files = tmp_path / "cache" / "abc"
    (files / "sub").mkdir(parents=True)
    (files / "model.onnx").write_bytes(b"onnx bytes")
    (files / "sub" / "vocab.txt").write_text("a\nb\n")
    if config is not None:
        (files / "config.toml").write_text(config)
    return files


def test_a_placed_version_is_whole_on_record_and_takes_the_source_config(tmp_path: Path):
    root = tmp_path / "models"
    files = fetched(tmp_path, config="max_batch_size = 2\n")
    placement = Placement(root, SOURCE)
    final = placement.place("iris", 3, files, "f" * 64, "max_batch_size = 16\n")
    assert final == root / "iris" / "3"
    assert (final / "model.onnx").read_bytes() == b"onnx bytes"
    assert (final / "sub" / "vocab.txt").read_text() == "a\nb\n"
    assert not (final / "config.toml").exists()  # a config in the artifact is the model's, not the version's
    assert (root / "iris" / "config.toml").read_text() == "max_batch_size = 16\n"  # the source's text wins
    assert not list((root / "iris").glob(".incoming-*"))
    assert placement.placed("iris") == {3: "f" * 64}
    assert placement.versions("iris") == {3}
    assert placement.has("iris", 3)
    assert not placement.has("iris", 4)
    assert Repository(root).model_names() == ["iris"]


def test_the_artifact_config_serves_a_new_model_and_an_existing_config_is_never_overwritten(tmp_path: Path):
    root = tmp_path / "models"
    placement = Placement(root, SOURCE)
    placement.place("iris", 1, fetched(tmp_path, config="max_batch_size = 2\n"), "a" * 64, None)
    assert (root / "iris" / "config.toml").read_text() == "max_batch_size = 2\n"
    (root / "iris" / "config.toml").write_text("max_batch_size = 8\n")  # an operator's edit
    other = tmp_path / "other"
    (other / "cache" / "abc").mkdir(parents=True)
    placement.place("iris", 2, fetched(other), "b" * 64, "max_batch_size = 16\n")
    assert (root / "iris" / "config.toml").read_text() == "max_batch_size = 8\n"


def test_only_what_this_source_placed_and_still_there_is_on_record(tmp_path: Path):
    root = tmp_path / "models"
    files = fetched(tmp_path)
    ours, theirs = Placement(root, SOURCE), Placement(root, "memory://elsewhere")
    ours.place("iris", 1, files, "a" * 64, None)
    theirs.place("iris", 2, files, "b" * 64, None)
    (root / "iris" / "3").mkdir()  # put in by hand: no record, never pruned
    (root / "iris" / ".registry" / "9.json").write_bytes(b"not json")  # unreadable, and no folder either
    assert ours.placed("iris") == {1: "a" * 64}
    assert theirs.placed("iris") == {2: "b" * 64}
    assert ours.versions("iris") == {1, 2, 3}
    assert ours.placed("unknown") == {}
    assert ours.versions("unknown") == frozenset()


def test_set_aside_moves_a_version_out_of_the_repository(tmp_path: Path):
    root = tmp_path / "models"
    files = fetched(tmp_path)
    placement = Placement(root, SOURCE)
    for version in (1, 2):
        placement.place("iris", version, files, f"{version}" * 64, None)
    placement.set_aside("iris", 1, "1" * 64)
    placement.set_aside("iris", 2, "2" * 64, deleted=True)
    placement.set_aside("iris", 7, "7" * 64)  # not there: nothing to do
    assert placement.versions("iris") == frozenset()
    assert (root / "iris" / ".failed" / f"1-{'1' * 12}" / "model.onnx").is_file()
    assert (root / "iris" / ".deleted" / f"2-{'2' * 12}" / "model.onnx").is_file()
    assert placement.placed("iris") == {}
