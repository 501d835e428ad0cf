"""The configuration feedback reads: a model's ``[quality]`` in config.toml, the server's ``feedback.max_items``."""

from pathlib import Path

import pytest

from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.repository.model_config import QualityConfig, load_model_config


def _model(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_quality_table_parses_and_is_none_without_one(tmp_path: Path):
    text = '[quality]\ntask = "classification"\nlabel_output = "label"\nscore_output = "p"\nclasses = ["a", "b"]\n'
    config = load_model_config(_model(tmp_path, text + 'positive = "b"\n'))
    assert config.quality == QualityConfig(
        task="classification", label_output="label", score_output="p", classes=["a", "b"], positive="b"
    )
    assert load_model_config(_model(tmp_path, "max_batch_size = 4\n")).quality is None
    regression = load_model_config(_model(tmp_path, '[quality]\ntask = "regression"\nlabel_output = "y"\n'))
    assert regression.quality == QualityConfig(task="regression", label_output="y")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('task = "ranking"\nlabel_output = "y"', ("quality.task", "ranking")),
        ('label_output = "y"', ("quality", "task")),
        ('task = "regression"', ("quality", "label_output")),
        ('task = "regression"\nlabel_output = ""', ("quality.label_output",)),
        ('task = "regression"\nlabel_output = "y"\nclasses = [0, 1]', ("quality.classes", "regression")),
        ('task = "classification"\nlabel_output = "y"\nscore_output = "p"', ("quality.classes", "score_output")),
        ('task = "classification"\nlabel_output = "y"\nclasses = [1, 1]', ("quality.classes", "distinct")),
        ('task = "classification"\nlabel_output = "y"\nclasses = [0, 1]\npositive = 2', ("quality.positive",)),
        ('task = "classification"\nlabel_output = "y"\nwindow = 5', ("quality", "window")),
    ],
)
def test_a_bad_quality_table_names_the_file_and_key(tmp_path: Path, table: str, words: tuple[str, ...]):
    path = _model(tmp_path, f"[quality]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_model_config(path)
    for word in (str(path), *words):
        assert word in str(info.value)


def test_quality_outputs_must_be_declared_outputs_when_outputs_are_declared(tmp_path: Path):
    outputs = '[[outputs]]\nname = "label"\ndatatype = "INT64"\nshape = [-1]\n'
    good = outputs + '[quality]\ntask = "classification"\nlabel_output = "label"\n'
    assert load_model_config(_model(tmp_path, good)).quality is not None
    with pytest.raises(ConfigError, match=r"quality.label_output 'lable' is not one of the outputs \['label'\]"):
        load_model_config(_model(tmp_path, good.replace('label_output = "label"', 'label_output = "lable"')))


def test_feedback_max_items_defaults_and_must_be_positive():
    assert load_settings(environ={}).feedback.max_items == 10_000
    assert load_settings(environ={"DRIFTLINE_FEEDBACK__MAX_ITEMS": "50"}).feedback.max_items == 50
    with pytest.raises(ConfigError, match=r"feedback.max_items must be >= 1, got 0"):
        load_settings(environ={"DRIFTLINE_FEEDBACK__MAX_ITEMS": "0"})
