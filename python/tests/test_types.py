"""Every column type Strata stores goes in and comes back out unchanged, through pyarrow,
Polars and pandas."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import strata

UTC = dt.timezone.utc


def every_type():
    n = 5

    def col(values):
        return values + [None] * (n - len(values))

    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "i8": pa.array(col([-128, 127, 0, 1]), pa.int8()),
            "i16": pa.array(col([-32768, 32767, 0, 1]), pa.int16()),
            "i32": pa.array(col([-(2**31), 2**31 - 1, 0, 1]), pa.int32()),
            "i64": pa.array(col([-(2**63), 2**63 - 1, 0, 1]), pa.int64()),
            "u8": pa.array(col([0, 255, 1, 2]), pa.uint8()),
            "u16": pa.array(col([0, 65535, 1, 2]), pa.uint16()),
            "u32": pa.array(col([0, 2**32 - 1, 1, 2]), pa.uint32()),
            "u64": pa.array(col([0, 2**64 - 1, 1, 2]), pa.uint64()),
            "f32": pa.array(col([1.5, -0.25, float("inf"), 3.0]), pa.float32()),
            "f64": pa.array(col([1e300, -2.5, float("-inf"), 0.1]), pa.float64()),
            "b": pa.array(col([True, False, True, False]), pa.bool_()),
            "s": pa.array(col(["", "héllo", "日本語", "x" * 1000]), pa.string()),
            "bin": pa.array(col([b"", b"\x00\xff", b"abc", bytes(range(256))]), pa.binary()),
            "d": pa.array(col([dt.date(1970, 1, 1), dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31)]), pa.date32()),
            "ts_s": pa.array(col([dt.datetime(2024, 1, 1, 12, 0, 1)] * 4), pa.timestamp("s")),
            "ts_ms": pa.array(col([dt.datetime(2024, 1, 1, 12, 0, 1, 123000)] * 4), pa.timestamp("ms")),
            "ts_us": pa.array(col([dt.datetime(2024, 1, 1, 12, 0, 1, 123456)] * 4), pa.timestamp("us")),
            "ts_ns": pa.array(col([1_700_000_000_123_456_789, 0, -1, 5]), pa.timestamp("ns")),
            "ts_tz": pa.array(col([dt.datetime(2024, 1, 1, tzinfo=UTC)] * 4), pa.timestamp("us", tz="UTC")),
            "ts_ny": pa.array(col([dt.datetime(2024, 6, 1, tzinfo=UTC)] * 4), pa.timestamp("ms", tz="America/New_York")),
            "dec": pa.array(col([Decimal("1.23"), Decimal("-99999.99"), Decimal("0.00"), Decimal("12345.67")]), pa.decimal128(7, 2)),
            "dec38": pa.array(col([Decimal("1" * 38), Decimal("-" + "9" * 38), Decimal(0), Decimal(1)]), pa.decimal128(38, 0)),
        }
    )


def test_every_column_type_round_trips(repo):
    t = every_type()
    report = repo.write("all", t, primary_key="id")
    # Key columns are never null, and say so.
    t = t.cast(pa.schema([f.with_nullable(f.name != "id") for f in t.schema]))
    assert report["created"] and report["rows"] == 5
    repo.commit("all types")
    back = repo.table("all").to_arrow()
    assert back.schema == t.schema
    assert back.equals(t)
    # The same through the committed revision, and column by column.
    at_head = repo.table("all", rev="HEAD")
    assert at_head.to_arrow().equals(t)
    for name in t.column_names:
        assert at_head.to_arrow(columns=[name]).column(0).equals(t.column(name)), name


def test_the_strata_type_names_describe_the_columns(repo):
    repo.write("all", every_type(), primary_key="id")
    cols = {name: ty for name, ty, _ in repo.table("all").columns}
    assert cols["u64"] == "uint64"
    assert cols["dec"] == "decimal128(7, 2)"
    assert cols["ts_ny"].startswith("timestamp[ms")


@pytest.mark.parametrize(
    "key_type,values,probe",
    [
        (pa.int32(), [3, 1, 2], 2),
        (pa.uint64(), [2**64 - 1, 0, 7], 2**64 - 1),
        (pa.string(), ["b", "a", "c"], "b"),
        (pa.binary(), [b"\x02", b"\x01", b"\x03"], b"\x02"),
        (pa.date32(), [dt.date(2024, 1, 3), dt.date(2024, 1, 1), dt.date(2024, 1, 2)], dt.date(2024, 1, 2)),
        (pa.timestamp("us"), [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], dt.datetime(2024, 1, 2)),
        (pa.decimal128(5, 1), [Decimal("3.5"), Decimal("1.5"), Decimal("2.5")], Decimal("2.5")),
        (pa.bool_(), [True, False], True),
    ],
)
def test_keys_of_each_type_sort_filter_and_delete(repo, key_type, values, probe):
    t = pa.table({"k": pa.array(values, key_type), "v": list(range(len(values)))})
    repo.write("t", t, primary_key="k")
    back = repo.table("t").to_arrow()
    assert back.column("k").to_pylist() == sorted(values)
    one = repo.table("t").to_arrow(filter=probe)
    assert one.column("k").to_pylist() == [probe]
    repo.delete("t", [probe])
    assert probe not in repo.table("t").to_arrow().column("k").to_pylist()


def test_composite_keys(repo):
    t = pa.table({"region": ["eu", "us", "eu", "us"], "n": [2, 1, 1, 2], "v": [1.0, 2.0, 3.0, 4.0]})
    repo.write("t", t, primary_key=["region", "n"])
    h = repo.table("t")
    assert h.primary_key == ["region", "n"]
    assert h.to_arrow().select(["region", "n"]).to_pylist() == [
        {"region": "eu", "n": 1}, {"region": "eu", "n": 2}, {"region": "us", "n": 1}, {"region": "us", "n": 2},
    ]
    # A prefix of the key selects every key that starts with it.
    assert h.to_arrow(filter="eu").column("n").to_pylist() == [1, 2]
    assert h.to_arrow(filter=("us", 2)).column("v").to_pylist() == [4.0]
    repo.delete("t", [("eu", 1)])
    assert repo.table("t").num_rows == 3


def test_other_string_and_binary_layouts_are_stored_as_utf8_and_binary(repo):
    t = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "large": pa.array(["a", None], pa.large_string()),
            "view": pa.array(["b", "c"], pa.string_view()),
            "dict": pa.array(["x", "y"]).dictionary_encode(),
            "lbin": pa.array([b"1", b"2"], pa.large_binary()),
        }
    )
    repo.write("t", t, primary_key="id")
    back = repo.table("t").to_arrow()
    assert back.schema.field("large").type == pa.string()
    assert back.schema.field("view").type == pa.string()
    assert back.schema.field("dict").type == pa.string()
    assert back.schema.field("lbin").type == pa.binary()
    assert back.to_pylist() == [
        {"id": 1, "large": "a", "view": "b", "dict": "x", "lbin": b"1"},
        {"id": 2, "large": None, "view": "c", "dict": "y", "lbin": b"2"},
    ]


def test_pandas_round_trip(repo):
    df = pd.DataFrame(
        {
            "id": [3, 1, 2],
            "name": ["c", "a", "b"],
            "price": [3.5, 1.5, None],
            "when": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02"]),
        }
    )
    repo.write("t", df, primary_key="id")
    back = repo.table("t").to_pandas()
    expected = df.sort_values("id").reset_index(drop=True)
    assert back["id"].tolist() == expected["id"].tolist()
    assert back["name"].tolist() == expected["name"].tolist()
    assert back["price"].isna().tolist() == expected["price"].isna().tolist()
    assert back["when"].tolist() == expected["when"].tolist()


def test_polars_round_trip(repo):
    df = pl.DataFrame(
        {
            "id": [2, 1, 3],
            "name": ["b", "a", None],
            "qty": pl.Series([20, 10, 30], dtype=pl.Int16),
            "day": [dt.date(2024, 1, 2), dt.date(2024, 1, 1), dt.date(2024, 1, 3)],
            "ok": [True, None, False],
        }
    )
    repo.write("t", df, primary_key="id")
    back = pl.DataFrame(repo.table("t"))
    assert back.equals(df.sort("id"))
    # from_arrow() of any Arrow stream is a Series of structs, one field per column.
    assert pl.from_arrow(repo.table("t")).struct.unnest().equals(df.sort("id"))


def test_unsupported_types_are_refused_with_the_column_named(repo):
    t = pa.table({"id": [1], "tags": pa.array([["a", "b"]], pa.list_(pa.string()))})
    with pytest.raises(strata.UnsupportedError, match="tags"):
        repo.write("t", t, primary_key="id")


def test_types_give_a_new_tables_column_types(repo):
    data = pa.table({"id": [1, 2], "zip": [123, 40510], "qty": [1.0, 2.0]})
    r = repo.write("t", data, primary_key="id", types={"zip": "string", "qty": "int64"})
    assert r["notes"] == []
    schema = repo.table("t").to_arrow().schema
    assert schema.field("zip").type == pa.string()
    assert schema.field("qty").type == pa.int64()
    assert repo.table("t").to_arrow().column("qty").to_pylist() == [1, 2]


def test_a_fraction_for_an_int_column_is_refused_not_cut(repo):
    repo.write("t", pa.table({"id": [1], "qty": [5]}), primary_key="id")
    with pytest.raises(strata.InvalidInputError, match="fraction") as e:
        repo.write("t", pa.table({"id": [2], "qty": [2.5]}), mode="upsert")
    assert "'qty'" in str(e.value)
    assert repo.table("t").to_arrow().column("qty").to_pylist() == [5]


def test_an_unknown_type_name_is_refused(repo):
    with pytest.raises(strata.InvalidInputError, match="unknown column type 'float128'"):
        repo.write("t", pa.table({"id": [1]}), primary_key="id", types={"id": "float128"})
