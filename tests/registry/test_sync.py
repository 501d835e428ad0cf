"""Registry sync in process, on a real directory source, model table, SQLite store and audit log: deletions at the
source and alias values that could not be applied at first."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import msgspec
import pytest
from tests.e2e.test_registry_sync import publish, set_source_aliases
from tests.helpers import write_config
from tests.lifecycle.test_lifecycle import Running

from driftline.config import RegistrySettings
from driftline.registry import ArtifactCache, open_source
from driftline.registry.sync import RegistrySync
from driftline.repository.demo import build_classifier_onnx
from driftline.serving.routing import RoutingPolicy, Shadow
from driftline.store.audit import AuditEvent


@pytest.fixture
async def running(tmp_path: Path, iris_weights):
    models = tmp_path / "models"
    # A model put in the repository by hand: no sync may ever remove it.
    build_classifier_onnx(models / "local" / "1" / "model.onnx", *iris_weights)
    write_config(models / "local", "max_batch_size = 8\n")
    r = await Running(models, tmp_path / "driftline.db").start()
    yield r
    await r.stop()


def syncer(r: Running, source: Path, tmp_path: Path) -> RegistrySync:
    settings = RegistrySettings(source=str(source), cache_dir=str(tmp_path / "cache"))
    return RegistrySync(
        open_source(str(source)), ArtifactCache(tmp_path / "cache"), r.table, r.lifecycle, r.audit, settings
    )


def actions(r: Running, action: str) -> list[AuditEvent]:
    return r.audit.events(model="iris", action=action)


async def test_a_version_deleted_at_the_source_is_unloaded_unless_held(running: Running, tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    set_source_aliases(source, 2)
    for version in (1, 2, 3):
        publish(source, version, iris_weights)
    sync = syncer(running, source, tmp_path)
    await sync.sync_once()
    repo = tmp_path / "models" / "iris"
    assert set(running.table.loaded()["iris"]) == {2, 3}  # latest 1, plus the champion
    # Version 1 is placed but not loaded (the version policy did not select it): that is no failure.
    assert (repo / "1").is_dir()
    assert sync.status().failed_versions == []

    # Version 3 deleted at the source: unloaded (after its queue drained), moved aside, on record.
    shutil.rmtree(source / "iris" / "3")
    report = await sync.sync_once()
    assert report.deleted == ["iris/3"]
    assert set(running.table.loaded()["iris"]) == {2}
    assert not (repo / "3").exists()
    assert list((repo / ".deleted").glob("3-*"))
    unload = actions(running, "unload")[0]
    assert (unload.version_before, unload.actor) == ("3", f"registry:{source}")
    assert unload.reason == "removed from the repository"
    assert (await running.infer("iris"))["model_version"] == "2"

    # The champion's version deleted at the source: the alias holds it; refused once, however many polls.
    shutil.rmtree(source / "iris" / "2")
    for _ in range(3):
        assert (await sync.sync_once()).deleted == []
    assert (repo / "2").is_dir()
    refused = actions(running, "delete_refused")
    assert len(refused) == 1
    assert refused[0].version_before == "2"
    assert "alias, route or pin holds it" in refused[0].reason
    assert msgspec.to_builtins(sync.status().deleted_but_held) == [
        {"model": "iris", "version": "2", "reason": "an alias, route or pin holds it"}
    ]
    assert (await running.infer("iris"))["model_version"] == "2"

    # Once the alias lets go, the next poll prunes it.
    await running.lifecycle.load_version("iris", 1, "key:test")
    await running.lifecycle.set_alias("iris", "champion", 1, "key:test")
    assert (await sync.sync_once()).deleted == ["iris/2"]
    assert set(running.table.loaded()["iris"]) == {1}
    assert sync.status().deleted_but_held == []

    # The model put in by hand is untouched.
    assert set(running.table.loaded()["local"]) == {1}
    assert (tmp_path / "models" / "local" / "1").is_dir()


async def test_the_last_version_stays_and_an_unreadable_listing_prunes_nothing(
    running: Running, tmp_path: Path, iris_weights
):
    source = tmp_path / "registry"
    write_config(source / "iris", "max_batch_size = 16\n")
    for version in (1, 2):
        publish(source, version, iris_weights)
    sync = syncer(running, source, tmp_path)
    await sync.sync_once()
    repo = tmp_path / "models" / "iris"

    # A version the listing had to skip is not a deleted version.
    (source / "iris" / "1" / "model.onnx.sha256").write_text("not a digest\n")
    assert (await sync.sync_once()).deleted == []
    assert (repo / "1").is_dir()
    assert "holds no sha256 digest" in sync.status().problems[0]

    # The whole model deleted at the source: everything but the newest goes; the sync never takes a model offline.
    shutil.rmtree(source / "iris")
    assert (await sync.sync_once()).deleted == ["iris/1"]
    assert (repo / "2").is_dir()
    assert "last version" in actions(running, "delete_refused")[0].reason
    assert (await running.infer("iris"))["model_version"] == "2"


async def test_a_problem_in_another_model_does_not_stop_deletions(running: Running, tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    write_config(source / "iris", "max_batch_size = 16\n")
    for version in (1, 2, 3):
        publish(source, version, iris_weights)
    sync = syncer(running, source, tmp_path)
    await sync.sync_once()
    # Another model of the same registry whose versions carry no usable digest: skipped and on record, and only
    # its own deletions stop being mirrored (a registry shared by teams always has something wrong somewhere).
    shutil.copytree(source / "iris", source / "other")
    for version in (1, 2, 3):
        (source / "other" / str(version) / "model.onnx.sha256").write_text("not a digest\n")
    shutil.rmtree(source / "iris" / "1")
    assert (await sync.sync_once()).deleted == ["iris/1"]
    assert any("other/1" in problem for problem in sync.status().problems)
    assert not (tmp_path / "models" / "iris" / "1").exists()


async def test_mirror_deletions_off_keeps_everything(running: Running, tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    write_config(source / "iris", "max_batch_size = 16\n")
    for version in (1, 2):
        publish(source, version, iris_weights)
    settings = RegistrySettings(source=str(source), cache_dir=str(tmp_path / "cache"), mirror_deletions=False)
    sync = RegistrySync(
        open_source(str(source)), ArtifactCache(tmp_path / "cache"), running.table, running.lifecycle,
        running.audit, settings,
    )  # fmt: skip
    await sync.sync_once()
    shutil.rmtree(source / "iris" / "2")
    assert (await sync.sync_once()).deleted == []
    assert (tmp_path / "models" / "iris" / "2").is_dir()


async def test_a_refused_alias_is_tried_again_once_its_version_loads(running: Running, tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    set_source_aliases(source, 2)
    publish(source, 1, iris_weights)
    artifact = publish(source, 2, iris_weights, sha256="0" * 64)  # a digest the artifact does not match
    sync = syncer(running, source, tmp_path)
    first = await sync.sync_once()
    assert first.failed[0].version == "2"
    assert first.refused[0].alias == "champion"

    # Nothing changed: the same refusal is not tried (nor audited) again on every poll.
    for _ in range(3):
        assert (await sync.sync_once()).refused == []
    assert len(actions(running, "alias_refused")) == 1

    # The publisher fixes the digest: the version loads, and the alias the source states follows it.
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    (artifact.parent / "model.onnx.sha256").write_text(f"{digest}  model.onnx\n")
    report = await sync.sync_once()
    assert report.loaded == ["iris/2"]
    assert msgspec.to_builtins(report.aliases) == [{"model": "iris", "alias": "champion", "version": "2"}]
    assert (await running.infer("iris"))["model_version"] == "2"


async def test_an_alias_deleted_at_the_registry_is_deleted_here_when_that_is_safe(
    running: Running, tmp_path: Path, iris_weights
):
    source = tmp_path / "registry"

    def aliases(**values: int) -> None:
        table = ", ".join(f"{a} = {v}" for a, v in values.items())
        write_config(
            source / "iris", f'max_batch_size = 16\nversion_policy = {{ policy = "all" }}\naliases = {{ {table} }}\n'
        )

    aliases(champion=1, staging=2, canary=2, mine=1)
    for version in (1, 2):
        publish(source, version, iris_weights)
    sync = syncer(running, source, tmp_path)
    await sync.sync_once()
    lifecycle = running.lifecycle
    assert running.table.routes("iris").aliases == {"champion": 1, "staging": 2, "canary": 2, "mine": 1}
    await lifecycle.set_routing("iris", RoutingPolicy(shadow=Shadow("canary")), "key:op")
    await lifecycle.set_alias("iris", "mine", 2, "key:op")  # moved here: the operator's from now on

    # The registry deletes every alias: staging goes; the default alias, an alias the routing names and an alias
    # moved here stay, and each refusal is on record once however many polls.
    aliases()
    for _ in range(3):
        await sync.sync_once()
    assert running.table.routes("iris").aliases == {"champion": 1, "canary": 2, "mine": 2}
    deleted = actions(running, "alias_deleted")
    assert [(e.reason, e.actor) for e in deleted] == [("staging: deleted at the registry", f"registry:{source}")]
    refused = sorted(e.reason for e in actions(running, "alias_refused"))
    assert len(refused) == 2
    assert refused[0].startswith("canary: deleted at the registry, kept here: alias 'canary' is used by")
    assert refused[1].startswith("champion: deleted at the registry, kept here: it is the default alias")
    assert (await running.infer("iris"))["model_version"] == "1"

    # Once the routing lets go of it, the next poll deletes it; the champion stays.
    await lifecycle.set_routing("iris", RoutingPolicy(), "key:op")
    await sync.sync_once()
    assert running.table.routes("iris").aliases == {"champion": 1, "mine": 2}


async def test_a_version_republished_with_other_bytes_is_refused_once(running: Running, tmp_path: Path, iris_weights):
    source = tmp_path / "registry"
    write_config(source / "iris", "max_batch_size = 16\n")
    artifact = publish(source, 1, iris_weights)
    sync = syncer(running, source, tmp_path)
    await sync.sync_once()
    placed = hashlib.sha256((tmp_path / "models" / "iris" / "1" / "model.onnx").read_bytes()).hexdigest()

    # The source now states another digest for version 1: the version placed here stays, on record once.
    other = "1" * 64
    (artifact.parent / "model.onnx.sha256").write_text(f"{other}  model.onnx\n")
    for _ in range(3):
        await sync.sync_once()
    refused = actions(running, "republish_refused")
    assert len(refused) == 1
    assert (refused[0].version_before, refused[0].sha256) == ("1", other)
    assert "versions are immutable" in refused[0].reason
    assert msgspec.to_builtins(sync.status().changed_at_source) == [
        {"model": "iris", "version": "1", "source_sha256": other}
    ]
    assert hashlib.sha256((tmp_path / "models" / "iris" / "1" / "model.onnx").read_bytes()).hexdigest() == placed
    assert (await running.infer("iris"))["model_version"] == "1"
