"""Reading tables: columns, key filters that skip chunks, streams of batches, and DuckDB,
Polars and pyarrow reading a table handle directly."""

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import strata

N = 100_000


@pytest.fixture
def big(repo):
    t = pa.Table.from_pydict(
        {
            "id": pa.array(range(N), pa.int64()),
            "name": [f"name{i % 977}" for i in range(N)],
            "qty": pa.array([i % 1000 for i in range(N)], pa.int64()),
            "price": [i / 100 for i in range(N)],
        },
        schema=pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string()),
                          ("qty", pa.int64()), ("price", pa.float64())]),
    )
    repo.write("items", t, primary_key="id", chunk_rows=1024)
    repo.commit("items")
    return repo, t


def test_table_handle_describes_the_table(big):
    repo, t = big
    h = repo.table("items")
    assert h.name == "items"
    assert h.num_rows == N == len(h)
    assert h.primary_key == ["id"]
    assert h.schema == t.schema
    assert h.num_chunks > 20
    assert "items" in repr(h)


def test_to_arrow_reads_all_rows_in_key_order_and_chosen_columns(big):
    repo, t = big
    assert repo.table("items").to_arrow().equals(t)
    part = repo.table("items").to_arrow(columns=["price", "id"])
    assert part.column_names == ["price", "id"]
    assert part.column("id").equals(t.column("id"))
    with pytest.raises(strata.InvalidInputError, match="no column 'nope'"):
        repo.table("items").to_arrow(columns=["nope"])


def test_key_filters_read_only_the_chunks_they_reach(big):
    repo, t = big
    h = repo.table("items")
    everything = h.chunks_read()
    assert everything == h.num_chunks

    r = h.to_arrow(filter=slice(1000, 1010))
    assert r.column("id").to_pylist() == list(range(1000, 1010))
    assert h.chunks_read(slice(1000, 1010)) <= 2

    r = h.to_arrow(filter=[("id", ">=", 500), ("id", "<=", 510)])
    assert r.column("id").to_pylist() == list(range(500, 511))
    assert h.chunks_read([("id", ">=", 500), ("id", "<=", 510)]) <= 2

    r = h.to_arrow(filter=[("id", ">", N - 3)])
    assert r.column("id").to_pylist() == [N - 2, N - 1]

    r = h.to_arrow(filter=[("id", "in", [5, 50_000, 99_999])])
    assert r.column("id").to_pylist() == [5, 50_000, 99_999]
    assert h.chunks_read([("id", "in", [5, 50_000, 99_999])]) == 3

    r = h.to_arrow(filter=[7, slice(20, 22), slice(N - 1, None)])
    assert r.column("id").to_pylist() == [7, 20, 21, N - 1]

    r = h.to_arrow(filter=slice(None, 3))
    assert r.column("id").to_pylist() == [0, 1, 2]

    assert h.to_arrow(filter=42).column("name").to_pylist() == ["name42"]
    assert h.to_arrow(filter=N + 5).num_rows == 0


def test_filters_on_other_columns_are_refused(big):
    repo, _ = big
    with pytest.raises(strata.InvalidInputError, match="first key column"):
        repo.table("items").to_arrow(filter=[("qty", ">", 5)])
    with pytest.raises(strata.InvalidInputError, match="float"):
        repo.table("items").to_arrow(filter=1.5)


def test_to_batches_streams_pyarrow_batches(big):
    repo, t = big
    stream = repo.table("items").to_batches(columns=["id", "qty"])
    assert stream.schema.names == ["id", "qty"]
    total = 0
    batches = 0
    for b in stream:
        assert isinstance(b, pa.RecordBatch)
        total += b.num_rows
        batches += 1
    assert total == N and batches > 1
    with pytest.raises(StopIteration):
        next(stream)
    whole = repo.table("items").to_batches(filter=slice(0, 5000)).read_all()
    assert whole.num_rows == 5000


def test_a_stream_is_read_once(big):
    repo, _ = big
    s = repo.table("items").to_batches()
    assert pa.table(s).num_rows == N
    with pytest.raises(RuntimeError, match="consumed"):
        s.__arrow_c_stream__()


def test_pyarrow_reads_a_table_handle(big):
    repo, t = big
    h = repo.table("items")
    assert pa.table(h).equals(t)
    reader = pa.RecordBatchReader.from_stream(h)
    assert reader.read_all().num_rows == N


def test_polars_reads_a_table_handle(big):
    repo, t = big
    h = repo.table("items")
    df = pl.DataFrame(h)
    assert df.height == N
    assert df["id"].to_list()[:3] == [0, 1, 2]
    assert df.filter(pl.col("qty") == 999).height == N // 1000
    # from_arrow() of an Arrow stream gives a Series of structs (one field per column).
    s = pl.from_arrow(h)
    assert s.len() == N
    assert s.struct.unnest().equals(df)
    lazy = pl.LazyFrame(h).filter(pl.col("id") < 10).select(pl.col("qty").sum()).collect()
    assert lazy.item() == sum(range(10))


def test_duckdb_reads_a_table_handle(big):
    repo, t = big
    items = repo.table("items")
    con = duckdb.connect()
    got = con.sql("SELECT count(*), sum(qty), max(id) FROM items").fetchall()
    assert got == [(N, int(pc.sum(t.column("qty")).as_py()), N - 1)]
    got = con.sql("SELECT name FROM items WHERE id = 977").fetchall()
    assert got == [("name0",)]
    # Twice: each scan opens a fresh stream.
    assert con.sql("SELECT count(*) FROM items").fetchall() == [(N,)]
    assert duckdb.sql("SELECT count(*) FROM items").fetchall() == [(N,)]
    assert duckdb.sql("SELECT * FROM items ORDER BY id").arrow().read_all().num_rows == N


def test_duckdb_joins_two_revisions(big):
    repo, _ = big
    repo.write("items", pa.table({"id": [3], "name": ["renamed"], "qty": [0], "price": [0.0]}), mode="upsert")
    repo.commit("rename 3")
    old = repo.table("items", rev="HEAD~1")
    new = repo.table("items", rev="HEAD")
    rows = duckdb.sql(
        "SELECT o.id, o.name, n.name FROM old o JOIN new n USING (id) WHERE o.name <> n.name"
    ).fetchall()
    assert rows == [(3, "name3", "renamed")]


def test_writes_take_polars_duckdb_and_pyarrow_data(repo):
    repo.write("a", pl.DataFrame({"id": [1, 2], "v": ["x", "y"]}), primary_key="id")
    repo.write("b", duckdb.sql("SELECT range AS id, range * 2 AS v FROM range(10)"), primary_key="id")
    repo.write("c", pa.record_batch({"id": [1], "v": [1.0]}), primary_key="id")
    reader = pa.RecordBatchReader.from_batches(
        pa.schema([("id", pa.int64())]), (pa.record_batch({"id": [i]}) for i in range(3))
    )
    repo.write("d", reader, primary_key="id")
    repo.write("e", {"id": [1, 2], "v": ["p", "q"]}, primary_key="id")
    assert [t["rows"] for t in repo.tables()] == [2, 10, 1, 3, 2]
    # A table handle is itself Arrow data: copy a table.
    repo.write("a_copy", repo.table("a"), primary_key="id")
    assert repo.table("a_copy").to_arrow().equals(repo.table("a").to_arrow())


def test_write_modes(repo):
    repo.write("t", pa.table({"id": [1, 2], "v": ["a", "b"]}), primary_key="id")
    r = repo.write("t", pa.table({"id": [3], "v": ["c"]}), mode="append")
    assert (r["inserted"], r["rows"]) == (1, 3)
    r = repo.write("t", pa.table({"id": [1, 4], "v": ["A", "d"]}), mode="upsert")
    assert (r["inserted"], r["updated"], r["rows"]) == (1, 1, 4)
    r = repo.write("t", pa.table({"id": [9], "v": ["z"]}), mode="replace")
    assert r["rows"] == 1
    r = repo.delete("t", [9, 10])
    assert (r["deleted"], r["missing"], r["rows"]) == (1, 1, 0)
    with pytest.raises(strata.InvalidInputError, match="mode 'merge'"):
        repo.write("t", pa.table({"id": [1]}), mode="merge")


def test_delete_by_arrow_keys(repo):
    repo.write("t", pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), primary_key="id")
    repo.delete("t", pa.table({"id": [1, 3]}))
    assert repo.table("t").to_arrow().column("v").to_pylist() == ["b"]
