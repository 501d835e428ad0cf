"""Column kinds, vocabularies and encoding onto a schema."""

import numpy as np
import polars as pl
import pytest

from driftline.drift.features import MAX_NEW_STRINGS, Encoder, infer_schema, to_table
from driftline.errors import DriftInputError


def test_kinds_and_vocabulary():
    table = to_table(
        pl.DataFrame(
            {
                "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                "few": [1, 2, 1, 2, 1, None],
                "s": ["b", "a", None, "b", "c", "a"],
                "flag": [True, False, True, None, False, True],
            }
        )
    )
    schema = infer_schema(table, categorical=["x"])
    assert [(c.kind, c.declared, c.distinct) for c in schema.columns] == [
        ("categorical", "categorical", 6),
        ("categorical", "numeric", 2),
        ("categorical", "string", 3),
        ("categorical", "bool", 2),
    ]
    encoded = Encoder(schema).encode(table)
    assert encoded.flags.f_contiguous  # frames encode column-major: the core reads one feature at a time
    assert encoded.dtype == np.float64
    np.testing.assert_array_equal(encoded[:, 2], [1, 0, np.nan, 1, 2, 0])
    np.testing.assert_array_equal(encoded[:, 3], [1, 0, 1, np.nan, 0, 1])
    assert np.isnan(encoded[5, 1])


def test_new_strings_get_stable_codes():
    schema = infer_schema(to_table(pl.DataFrame({"s": ["a", "b"]})))
    enc = Encoder(schema)
    first = enc.encode(pl.DataFrame({"s": ["z", "a", "y", "z"]}))[:, 0]
    second = enc.encode(pl.DataFrame({"s": ["y"]}))[:, 0]
    assert first.tolist() == [3.0, 0.0, 2.0, 3.0]
    assert second.tolist() == [2.0]
    assert enc.label(0, 3.0) == "z"
    assert enc.new_strings(0) == {2.0: "y", 3.0: "z"}


def test_new_strings_are_bounded():
    schema = infer_schema(to_table(pl.DataFrame({"s": ["a"]})))
    enc = Encoder(schema)
    many = [f"v{i}" for i in range(MAX_NEW_STRINGS + 5)]
    codes = enc.encode(pl.DataFrame({"s": many}))[:, 0]
    assert len(enc.new_strings(0)) == MAX_NEW_STRINGS
    assert codes.max() == 1 + MAX_NEW_STRINGS
    assert enc.label(0, codes.max()) == "(other)"


def test_arrays_and_mappings():
    t = to_table(np.arange(6.0).reshape(3, 2), names=["a", "b"])
    assert t.names == ["a", "b"]
    assert t.n_rows == 3
    t = to_table({"a": [1, 2], "b": ["x", "y"]})
    assert t.string_columns == {"b"}
    with pytest.raises(DriftInputError, match="2-D"):
        to_table(np.zeros(3))
    with pytest.raises(DriftInputError, match="different lengths"):
        to_table({"a": [1, 2], "b": [1]})
    schema = infer_schema(to_table(np.zeros((2, 2))))
    with pytest.raises(DriftInputError, match=r"\(rows, 2\)"):
        Encoder(schema).encode(np.zeros((2, 3)))
