"""The deployments store: aliases with their previous version, routing policies kept as the JSON text given, pins,
and the registry aliases acted on; all of it survives reopening the file."""

from pathlib import Path

from driftline.store.db import open_database
from driftline.store.deployments import DeploymentStore


def test_aliases_remember_where_they_pointed_before(tmp_path: Path, store_at):
    db = open_database(store_at("d.db"))
    store = DeploymentStore(db)
    assert store.seed_alias("iris", "champion", 1)
    assert not store.seed_alias("iris", "champion", 2)  # the store wins after the first start
    store.move_alias("iris", "champion", 2, 1)
    store.move_alias("mlp", "staging", 3, None)
    (row,) = store.aliases("iris")
    assert (row.model, row.alias, row.version, row.previous) == ("iris", "champion", 2, 1)
    assert [r.model for r in store.aliases()] == ["iris", "mlp"]
    store.delete_alias("iris", "champion")
    assert store.aliases("iris") == []
    db.close()


def test_routing_is_kept_as_the_text_given_and_none_removes_it(tmp_path: Path, store_at):
    path = store_at("d.db")
    db = open_database(path)
    text = '{"shadow":{"target":"challenger","percent":10.0}}'
    DeploymentStore(db).set_routing("iris", text)
    DeploymentStore(db).set_routing("mlp", '{"canary":{"target":"2","percent":5.0}}')
    DeploymentStore(db).set_routing("mlp", None)
    db.close()
    db = open_database(path)
    assert DeploymentStore(db).routing() == {"iris": text}
    db.close()


def test_pins_and_registry_aliases(tmp_path: Path, store_at):
    db = open_database(store_at("d.db"))
    store = DeploymentStore(db)
    store.pin("iris", 3)
    store.pin("iris", 3)  # pinning twice is one pin
    store.pin("iris", 1)
    store.unpin("iris", 1)
    assert store.pins() == {"iris": {3}}
    store.remember_registry_alias("mlflow://x", "iris", "champion", 2)
    store.remember_registry_alias("mlflow://x", "iris", "champion", 4)
    store.remember_registry_alias("mlflow://y", "iris", "champion", 1)
    assert store.registry_aliases("mlflow://x") == {("iris", "champion"): 4}
    store.forget_registry_alias("mlflow://x", "iris", "champion")
    assert store.registry_aliases("mlflow://x") == {}
    db.close()
