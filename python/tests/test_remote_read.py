"""A remote read in place: `strata.open(url)` (or `strata.open_remote`) reads any branch, tag
or commit of a folder or S3 remote with no clone, sees every push, and writes nothing."""

import os

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import strata
from test_cli import export, items


def files_under(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[p] = f.read()
    return out


def published(tmp_path, url=None, storage_options=None):
    """A Python repository with `items` (v1: 100 rows; main: 10 of them changed and 5 more: 105 rows)
    pushed with its tag to `url` (default: a folder)."""
    repo = strata.init(tmp_path / "src")
    repo.write("items", items(0, 100), primary_key="id", chunk_rows=16)
    repo.commit("first")
    repo.tag("v1")
    repo.write("items", items(90, 15, "fix"), mode="upsert")
    repo.commit("second")
    url = url or str(tmp_path / "remote")
    repo.add_remote("origin", url, storage_options=storage_options)
    repo.push(set_upstream=True, create=True)
    repo.push(tags=True)
    return repo, url


def test_a_folder_remote_reads_in_place_at_every_revision(tmp_path, cli):
    repo, url = published(tmp_path)
    before = files_under(url)
    r = strata.open(url)
    assert isinstance(r, strata.RemoteRepository)
    assert r.url == "file://" + url
    assert [(b["name"], b["commit"]) for b in r.branches()] == [("main", repo.resolve("main"))]
    assert [(t["name"], t["commit"]) for t in r.tags()] == [("v1", repo.resolve("v1"))]
    assert [t["table"] for t in r.tables()] == ["items"]
    assert r.resolve() == repo.resolve("main")
    assert [c["id"] for c in r.log()] == [c["id"] for c in repo.log("main")]
    assert [c["message"] for c in r.log("v1")] == ["first"]
    changed = r.diff("v1", table="items")
    assert changed.equals(repo.diff("v1", "main", table="items"))
    assert sorted(changed.column("kind").to_pylist()) == ["added"] * 5 + ["modified"] * 10
    assert r.diff("v1", "main")["items"].equals(changed)

    for rev in [None, "main", "v1", "main~1", repo.resolve("main")[:10]]:
        local = repo.table("items", rev=rev or "main").to_arrow()
        t = r.table("items", rev=rev)
        assert t.to_arrow().equals(local), rev
        assert t.num_rows == local.num_rows
        assert t.commit == repo.resolve(rev or "main")
    t = r.table("items")
    assert t.primary_key == ["id"]
    assert t.to_arrow(columns=["label"], filter=slice(95, 100)).column("label").to_pylist() == [
        f"fix{i}" for i in range(95, 100)
    ]
    assert t.chunks_read(filter=slice(0, 3)) < t.num_chunks
    # Other readers take the handle directly.
    assert duckdb.sql("SELECT count(*), sum(id) FROM t").fetchone() == (105, sum(range(105)))
    assert pl.from_arrow(pa.table(t)).height == 105
    assert files_under(url) == before, "reading wrote to the remote"

    # The command line pushes: a handle keeps its commit, a new one sees the push.
    d = tmp_path / "cli"
    cli(tmp_path, "clone", url, d)
    pacsv.write_csv(items(500, 3, "cli"), tmp_path / "c.csv")
    cli(d, "import", "items", tmp_path / "c.csv", "--mode", "append")
    cli(d, "commit", "-m", "from the cli")
    cli(d, "push")
    assert t.num_rows == 105 and t.to_arrow().num_rows == 105
    fresh = strata.open_remote("file://" + url).table("items")
    assert fresh.to_arrow().equals(export(cli, d, "items", tmp_path / "cli.parquet"))
    assert r.table("items").num_rows == 108


def test_a_radosgw_remote_reads_in_place(tmp_path, s3):
    endpoint, url = s3
    opts = {"endpoint": endpoint, "allow_http": True}
    repo, u = published(tmp_path, url("read"), storage_options=opts)
    r = strata.open(u, storage_options=opts)
    assert isinstance(r, strata.RemoteRepository)
    for rev in [None, "v1"]:
        assert r.table("items", rev=rev).to_arrow().equals(repo.table("items", rev=rev or "main").to_arrow())
    batches = list(r.table("items").to_batches())
    assert sum(b.num_rows for b in batches) == 105
    with pytest.raises(strata.NotFoundError, match="nope"):
        r.table("nope")
    with pytest.raises(strata.StrataError, match="not a strata repository"):
        strata.open(url("nothing"), storage_options=opts)


def test_bad_input_to_a_remote_read(tmp_path):
    repo, url = published(tmp_path)
    before = files_under(url)
    r = strata.open_remote(url)
    with pytest.raises(strata.NotFoundError, match="nosuch"):
        r.table("items", rev="nosuch")
    with pytest.raises(strata.InvalidInputError, match="branch, a tag or a commit"):
        r.table("items", rev="HEAD")
    with pytest.raises(strata.InvalidInputError, match="column"):
        r.table("items").to_arrow(columns=["nope"])
    with pytest.raises(strata.InvalidInputError, match="secret"):
        strata.open(url, storage_options={"aws_secret_access_key": "x"})
    with pytest.raises(strata.StrataError, match="not a strata repository"):
        strata.open_remote(str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()
    assert files_under(url) == before
    with pytest.raises(strata.InvalidInputError, match="clone"):
        r.log("v1..main")
    assert files_under(url) == before
    assert not hasattr(r, "write") and not hasattr(r, "commit"), "a remote read in place is read-only"


def test_open_tells_a_working_folder_from_a_remote(tmp_path):
    repo, url = published(tmp_path)
    # A folder pushed to, given as a path object: read in place.
    r = strata.open_remote(tmp_path / "remote")
    assert isinstance(r, strata.RemoteRepository)
    assert isinstance(strata.open(tmp_path / "remote"), strata.RemoteRepository)
    h = r.table("items")
    assert h.rev == "main" and h.commit == repo.resolve("main")
    # A working folder opens as the repository, even with a file named like the marker in
    # it, and so does its .strata folder.
    (tmp_path / "src" / "strata.json").write_text("{}")
    for p in [tmp_path / "src", tmp_path / "src" / ".strata", f"file://{tmp_path / 'src'}"]:
        assert isinstance(strata.open(p), strata.Repository), p
    with pytest.raises(strata.NotFoundError, match="remote.tables"):
        r.table("nope")
    with pytest.raises(strata.NotFoundError, match="remote.branches"):
        r.table("items", rev="nosuch")
    with pytest.raises(strata.InvalidInputError, match="remote-tracking"):
        r.table("items", rev="origin/main")
