"""Column kinds, vocabularies and encoding onto a schema."""

import re

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


def _by_name(report):
    return {f.name: f for f in report.features}


def test_pyarrow_tables_and_batches_keep_names_and_kinds(frames):
    import pyarrow as pa

    from driftline.drift import compute_drift

    ref, cur = frames
    # "income" is drawn the same way in both frames: it must not drift, and must be tested as numeric.
    for convert in (lambda f: f.to_arrow(), lambda f: f.to_arrow().to_batches()[0]):
        arrow_ref, arrow_cur = convert(ref), convert(cur)
        assert isinstance(arrow_ref, pa.Table | pa.RecordBatch)
        table = to_table(arrow_ref)
        assert table.names == ref.columns
        assert table.string_columns == {"city"}
        assert table.bool_columns == {"member"}
        got = _by_name(compute_drift(arrow_ref, arrow_cur))
        want = _by_name(compute_drift(ref, cur))
        assert list(got) == ref.columns
        assert got["income"].kind == "numeric"
        assert got["income"].verdict == "ok"
        assert got["income"].value < 0.5
        for name, feature in want.items():
            assert (got[name].kind, got[name].stat, got[name].verdict) == (feature.kind, feature.stat, feature.verdict)
            assert got[name].value == pytest.approx(feature.value, rel=1e-12)


def test_lazy_frames_are_collected_and_series_are_one_feature(frames):
    from driftline.drift import compute_drift

    ref, cur = frames
    lazy = compute_drift(ref.lazy(), cur.lazy())
    assert _by_name(lazy)["age"].verdict == "drift"
    assert [f.name for f in lazy.features] == ref.columns
    series = compute_drift(ref.get_column("income"), cur.get_column("income"))
    assert [(f.name, f.kind, f.verdict) for f in series.features] == [("income", "numeric", "ok")]
    pandas_series = to_table(ref.to_pandas()["city"])
    assert pandas_series.names == ["city"]
    assert pandas_series.string_columns == {"city"}


def test_unsupported_data_types_are_refused_by_name(frames):
    import pyarrow as pa

    from driftline.drift import compute_drift

    ref, _ = frames
    cases = [
        (object(), "builtins.object"),
        ({1, 2}, "builtins.set"),
        (pa.array([1.0, 2.0]), "pyarrow.lib.DoubleArray"),
        (pl.col("age"), "polars.expr.expr.Expr"),
        (ref.to_pandas().index, "pandas.core.indexes.range.RangeIndex"),
    ]
    for data, name in cases:
        with pytest.raises(DriftInputError, match=rf"unsupported data type {re.escape(name)}; expected a polars"):
            to_table(data)
    with pytest.raises(DriftInputError, match=r"unsupported data type builtins\.object"):
        compute_drift(ref, object())
