"""Iceberg views: pyiceberg, DuckDB (iceberg_scan) and Polars (scan_iceberg) read every branch
and tag of a table in place, from the repository, from a folder remote and from radosgw, and
get exactly the rows Strata has at that revision."""

import datetime
import json
import decimal
import os
import pathlib

import duckdb
import duckdb_ext
import polars as pl
import pyarrow as pa
import pyarrow.parquet
import pytest
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.table import StaticTable

import strata

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")  # plan with pyiceberg, without a warning
EXTENSIONS = pathlib.Path(list(duckdb_ext.__path__)[0]) / "extensions" / f"v{duckdb.__version__}"

# Every column type Strata stores, with the Arrow type each Iceberg reader returns for it
# (Iceberg has no unsigned integers and, in format 2, microsecond timestamps only; Parquet has
# no second unit, so seconds are plain integers).
TYPES = {
    "i8": (pa.int8(), pa.int32()),
    "i16": (pa.int16(), pa.int32()),
    "i32": (pa.int32(), pa.int32()),
    "i64": (pa.int64(), pa.int64()),
    "u8": (pa.uint8(), pa.int32()),
    "u16": (pa.uint16(), pa.int32()),
    "u32": (pa.uint32(), pa.int64()),
    "u64": (pa.uint64(), pa.int64()),
    "f32": (pa.float32(), pa.float32()),
    "f64": (pa.float64(), pa.float64()),
    "flag": (pa.bool_(), pa.bool_()),
    "name": (pa.string(), pa.string()),
    "blob": (pa.binary(), pa.binary()),
    "day": (pa.date32(), pa.date32()),
    "ts_s": (pa.timestamp("s"), pa.int64()),
    "ts_ms": (pa.timestamp("ms"), pa.timestamp("us")),
    "ts_us": (pa.timestamp("us"), pa.timestamp("us")),
    "ts_ns": (pa.timestamp("ns"), pa.timestamp("us")),
    "ts_tz": (pa.timestamp("us", "UTC"), pa.timestamp("us", "UTC")),
    "amount": (pa.decimal128(10, 2), pa.decimal128(10, 2)),
}


def all_types(ids):
    cols = {"id": pa.array(ids, pa.int64())}
    base = datetime.datetime(2024, 1, 1)
    for name, (t, _) in TYPES.items():
        if name == "name":
            values = [f"n{i}" if i % 7 else None for i in ids]
        elif name == "blob":
            values = [bytes([i % 256, 0, 1]) for i in ids]
        elif name == "flag":
            values = [i % 2 == 0 for i in ids]
        elif name == "day":
            values = [datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 400) for i in ids]
        elif name.startswith("ts"):
            values = [base + datetime.timedelta(seconds=i, microseconds=0 if name == "ts_s" else (i % 1000) * 1000) for i in ids]
        elif name == "amount":
            values = [decimal.Decimal(i) / 100 for i in ids]
        elif name.startswith("f"):
            values = [i / 4 for i in ids]
        else:
            values = [i % 100 for i in ids]
        cols[name] = pa.array(values, t)
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)] + [pa.field(n, t) for n, (t, _) in TYPES.items()])
    return pa.table(cols, schema=schema)


def expected(repo, rev):
    """What Strata has at `rev`, as the Iceberg readers type it."""
    t = repo.table("t", rev=rev).to_arrow()
    target = pa.schema([pa.field("id", pa.int64(), nullable=False)] + [pa.field(n, r) for n, (_, r) in TYPES.items()])
    return t.cast(target)


def duck():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    for ext in ("avro", "iceberg"):
        path = EXTENSIONS / "linux_amd64" / f"{ext}.duckdb_extension"
        con.execute(f"LOAD '{path}'")
    return con


def same_rows(got, want):
    got = got.sort_by("id")
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        g = got.column(name).cast(want.schema.field(name).type)
        assert g.to_pylist() == want.column(name).to_pylist(), name


def read_all_three(view, want, storage=None, duck_setup=None):
    # pyiceberg: the metadata file.
    table = StaticTable.from_metadata(view["metadata"], properties=storage or {})
    got = table.scan().to_arrow()
    same_rows(got, want)
    for name, (_, reader_type) in TYPES.items():
        if name not in want.column_names:
            continue
        # pyiceberg keeps uint64 as it is in the file (the values are the same).
        allowed = (reader_type, pa.uint64()) if name == "u64" else (reader_type,)
        assert got.schema.field(name).type in allowed, name
    # DuckDB: the table folder (it follows metadata/version-hint.text).
    con = duck()
    if duck_setup:
        duck_setup(con)
    same_rows(con.sql(f"SELECT * FROM iceberg_scan('{view['location']}')").fetch_arrow_table(), want)
    # Polars: the metadata file. Polars refuses to read uint64 as Iceberg's long (it cannot
    # be cast safely), and seconds (it reads them as milliseconds, from the Arrow schema in
    # the file), loudly rather than changing values; every other column reads.
    lf = pl.scan_iceberg(view["metadata"], storage_options=storage or None)
    refused = [c for c in ("u64", "ts_s") if c in want.column_names]
    for c in refused:
        with pytest.raises(pl.exceptions.SchemaError, match=c):
            lf.select("id", c).collect()
    if refused:
        want = want.drop_columns(refused)
        lf = lf.select(want.column_names)
    same_rows(lf.collect().to_arrow(), want)


@pytest.fixture
def history(repo):
    """A table of every type, tagged v1, then on main one row changed, one deleted and one
    added."""
    repo.write("t", all_types(range(3000)), primary_key="id", chunk_rows=256)
    repo.commit("first")
    repo.tag("v1")
    repo.write("t", all_types([5]).set_column(12, "name", pa.array(["changed"])), mode="upsert")
    repo.delete("t", [2000])
    repo.write("t", all_types([100000]), mode="append")
    repo.commit("one row changed, one deleted, one added")
    return repo


def test_every_type_of_a_branch_and_a_tag_reads_the_same_in_three_engines(history):
    repo = history
    for rev in ("main", "v1"):
        view = repo.iceberg("t", rev=rev)
        assert view["ref"] == ("refs/heads/main" if rev == "main" else "refs/tags/v1")
        assert view["metadata"].startswith("file://") and view["metadata"].endswith(".metadata.json")
        read_all_three(view, expected(repo, rev))
    assert expected(repo, "main").num_rows == 3000
    assert 2000 not in expected(repo, "main").column("id").to_pylist()
    assert expected(repo, "v1").num_rows == 3000
    # The changed and the deleted rows are stored as deltas beside their chunks: the views name
    # the chunks' rows they replace or delete in position-delete files, which every engine
    # above applied.
    deletes = pathlib.Path(repo.path) / ".strata" / "iceberg" / "deletes"
    assert len([p for p in deletes.rglob("*.parquet")]) == 2
    # A later commit that changes another chunk: the view takes the earlier position deletes
    # from the manifests it replaces, and still leaves the deleted row out.
    repo.write("t", all_types([2900]).set_column(12, "name", pa.array(["later"])), mode="upsert")
    repo.commit("another chunk")
    later = expected(repo, "main")
    assert later.num_rows == 3000 and 2000 not in later.column("id").to_pylist()
    read_all_three(repo.iceberg("t"), later)
    assert len([p for p in deletes.rglob("*.parquet")]) == 3


def test_a_key_range_plans_only_the_chunks_it_overlaps(history):
    repo = history
    files = repo.ls_files("t", rev="main")
    assert len(files) > 5
    assert sum(f["rows"] for f in files) == 3000
    # The changed chunk, the chunk that lost a row and the table's last chunk keep their rows,
    # with a delta beside.
    deltas = [f for f in files if "delta" in f]
    assert len(deltas) == 3, files
    view = repo.iceberg("t")
    table = StaticTable.from_metadata(view["metadata"])
    # Every chunk and delta is a data file, but the delta of the chunk that lost a row: it
    # holds no rows, and only the view's position deletes say what it deletes.
    assert len(list(table.scan().plan_files())) == len(files) + len(deltas) - 1
    planned = [t.file.file_path for t in table.scan(row_filter=EqualTo("id", 1234)).plan_files()]
    holding = [f["uri"] for f in files if int(f["key_min"][0]) <= 1234 <= int(f["key_max"][0])]
    assert planned == holding and len(planned) == 1
    ranged = table.scan(row_filter=And(GreaterThanOrEqual("id", 1000), LessThan("id", 1600))).plan_files()
    overlapping = [f["uri"] for f in files if int(f["key_max"][0]) >= 1000 and int(f["key_min"][0]) < 1600]
    assert sorted(t.file.file_path for t in ranged) == sorted(overlapping)
    assert len(overlapping) < len(files)
    # The files are Parquet that DuckDB reads directly too: a chunk with a delta holds the
    # chunk's rows with the delta's replacing those of the same key, less the rows whose keys
    # the delta's footer lists as deleted (encoded keys in hex: an int64 is big-endian with
    # its sign bit flipped).
    con = duckdb.connect()
    path = lambda uri: uri.removeprefix("file://")
    plain = [path(f["uri"]) for f in files if "delta" not in f]
    rows = con.sql(f"SELECT count(*) FROM read_parquet({plain!r})").fetchone()[0]
    all_deleted = []
    for f in deltas:
        base, delta = path(f["uri"]), path(f["delta"])
        footer = pyarrow.parquet.read_metadata(delta).metadata or {}
        deleted = [int.from_bytes(bytes.fromhex(k), "big") ^ (1 << 63)
                   for k in json.loads(footer.get(b"strata.deletes", b"[]"))]
        all_deleted += deleted
        gone = "".join(f" AND id <> {k}" for k in deleted)
        merged = con.sql(
            f"SELECT count(*) FROM (SELECT id FROM read_parquet('{base}') WHERE id NOT IN "
            f"(SELECT id FROM read_parquet('{delta}')){gone} "
            f"UNION ALL SELECT id FROM read_parquet('{delta}'))"
        ).fetchone()[0]
        assert merged == f["rows"]
        rows += merged
    assert all_deleted == [2000]
    assert rows == 3000


def test_a_one_row_commit_adds_a_few_small_files_and_old_tags_stay(repo, tmp_path):
    repo.write("t", all_types(range(20000)), primary_key="id", chunk_rows=256)
    repo.commit("big")
    repo.tag("before")
    dot = pathlib.Path(repo.path) / ".strata" / "iceberg"
    files_before = {p for p in dot.rglob("*") if p.is_file()}
    repo.write("t", all_types([20000]), mode="append")
    repo.commit("one row")
    added = {p for p in dot.rglob("*") if p.is_file()} - files_before
    # One or two manifests, one list, one metadata file; the hint is rewritten in place.
    assert 3 <= len(added) <= 4, sorted(map(str, added))
    assert sum(p.stat().st_size for p in added) < 64 * 1024
    con = duck()
    main = repo.iceberg("t")
    assert con.sql(f"SELECT count(*) FROM iceberg_scan('{main['location']}')").fetchone()[0] == 20001
    before = repo.iceberg("t", rev="before")
    assert con.sql(f"SELECT count(*) FROM iceberg_scan('{before['location']}')").fetchone()[0] == 20000


def test_a_pushed_branch_and_tag_read_from_a_folder_remote_with_no_strata_running(history, tmp_path):
    repo = history
    remote = tmp_path / "remote"
    repo.add_remote("origin", str(remote))
    repo.push("origin", "main", tags=True, create=True)
    for rev in ("main", "v1"):
        view = repo.iceberg("t", rev=rev, remote="origin")
        assert view["files_written"] == 0, "the push published it already"
        assert view["metadata"].startswith(remote.as_uri())
        read_all_three(view, expected(repo, rev))
    # After a one-row commit and push, the engines see the new row; the tag reads as before.
    repo.write("t", all_types([7]).set_column(12, "name", pa.array(["pushed"])), mode="upsert")
    repo.commit("pushed change")
    repo.push("origin")
    hint = remote / "iceberg" / "heads" / "main" / "t" / "metadata" / "version-hint.text"
    location = (remote / "iceberg" / "heads" / "main" / "t").as_uri()
    assert duck().sql(f"SELECT name FROM iceberg_scan('{location}') WHERE id = 7").fetchone() == ("pushed",)
    assert hint.read_text() == str(repo.iceberg("t", remote="origin")["version"])
    tag = (remote / "iceberg" / "tags" / "v1" / "t").as_uri()
    assert duck().sql(f"SELECT name FROM iceberg_scan('{tag}') WHERE id = 7").fetchone() == (None,)


def exported(cli, d, rev, tmp_path):
    """What `strata export` writes for `rev`, as the Iceberg readers type it."""
    out = tmp_path / f"export-{rev}.parquet"
    cli(d, "export", "t", out, "--rev", rev)
    t = pa.parquet.read_table(out)
    target = pa.schema([pa.field("id", pa.int64(), nullable=False)] + [pa.field(n, r) for n, (_, r) in TYPES.items() if n in t.column_names])
    return t.cast(target)


def test_gc_keeps_every_refs_view_and_removes_the_rest(cli, tmp_path):
    # Through the command line only, as a user runs it; the readers run with no Strata
    # process at all.
    d = tmp_path / "repo"
    cli(tmp_path, "init", d)
    # Parquet files have no second unit: a timestamp[s] column comes back from one as
    # milliseconds, so it is left out here (the tests above cover it).
    pa.parquet.write_table(all_types(range(3000)).drop_columns(["ts_s"]), tmp_path / "a.parquet")
    pa.parquet.write_table(all_types([200000]).drop_columns(["ts_s"]), tmp_path / "b.parquet")
    cli(d, "import", "t", tmp_path / "a.parquet", "--primary-key", "id")
    cli(d, "commit", "-m", "first")
    cli(d, "tag", "v1")
    cli(d, "checkout", "-b", "scratch")
    cli(d, "import", "t", tmp_path / "b.parquet", "--mode", "append")
    cli(d, "commit", "-m", "scratch row")
    scratch = json.loads(cli(d, "iceberg", "t", "--json").stdout)
    cli(d, "import", "t", tmp_path / "b.parquet", "--mode", "upsert")
    cli(d, "checkout", "main")
    cli(d, "branch", "-D", "scratch")
    cli(d, "gc")
    dot = d / ".strata" / "iceberg"
    assert not any(p.is_file() for p in (dot / "heads" / "scratch").rglob("*"))
    assert not pathlib.Path(scratch["metadata"].removeprefix("file://")).exists()
    for rev in ("main", "v1"):
        view = json.loads(cli(d, "iceberg", "t", "--rev", rev, "--json").stdout)
        assert view["files_written"] == 0, "gc removed part of a view"
        read_all_three(view, exported(cli, d, rev, tmp_path))


def test_a_revision_that_is_not_a_ref_is_refused_with_what_to_do(history):
    with pytest.raises(strata.InvalidInputError, match="tag it first"):
        history.iceberg("t", rev="HEAD~1")
    with pytest.raises(strata.NotFoundError, match="nope"):
        history.iceberg("nope")


def test_views_on_radosgw_read_by_pyiceberg_duckdb_and_polars(history, s3):
    endpoint, url = s3
    repo = history
    u = url("iceberg")
    repo.add_remote("s3", u, storage_options={"endpoint": endpoint, "allow_http": True})
    repo.push("s3", "main", tags=True, create=True)
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    region = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    storage = {"s3.endpoint": endpoint, "s3.access-key-id": key, "s3.secret-access-key": secret, "s3.region": region}
    host = endpoint.removeprefix("http://")

    def duck_s3(con):
        con.execute(f"LOAD '{EXTENSIONS / 'linux_amd64' / 'httpfs.duckdb_extension'}'")
        con.execute(
            f"CREATE SECRET (TYPE s3, KEY_ID '{key}', SECRET '{secret}', ENDPOINT '{host}', "
            f"REGION '{region}', USE_SSL false, URL_STYLE 'path')"
        )

    for rev in ("main", "v1"):
        view = repo.iceberg("t", rev=rev, remote="s3")
        assert view["metadata"].startswith(u)
        read_all_three(view, expected(repo, rev), storage=storage, duck_setup=duck_s3)
