"""Python and the command line share repositories and remotes: each reads what the other
wrote, and a push from Python is pulled by the command line, through a folder remote and
through radosgw (S3)."""

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import strata


SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("label", pa.string()), ("price", pa.float64())])


def items(start, n, label="v"):
    return pa.Table.from_pydict({
        "id": pa.array(range(start, start + n), pa.int64()),
        "label": [f"{label}{i}" for i in range(start, start + n)],
        "price": [i * 0.5 for i in range(start, start + n)],
    }, schema=SCHEMA)


def export(cli, cwd, table, out, rev=None):
    args = ["export", table, out]
    if rev:
        args += ["--rev", rev]
    cli(cwd, *args)
    return pq.read_table(out)


def test_python_reads_what_the_cli_wrote(tmp_path, cli):
    d = tmp_path / "r"
    cli(tmp_path, "init", d)
    pacsv.write_csv(items(0, 50), tmp_path / "a.csv")
    cli(d, "import", "items", tmp_path / "a.csv", "--primary-key", "id")
    cli(d, "commit", "-m", "first from the cli")
    cli(d, "tag", "v1")
    pacsv.write_csv(items(40, 20, "w"), tmp_path / "b.csv")
    cli(d, "import", "items", tmp_path / "b.csv", "--mode", "upsert")
    cli(d, "commit", "-m", "second from the cli")

    repo = strata.open(d)
    assert [c["message"] for c in repo.log()] == ["second from the cli", "first from the cli"]
    v1 = repo.table("items", rev="v1").to_arrow()
    assert v1.num_rows == 50 and v1.column("label").to_pylist()[45] == "v45"
    now = repo.table("items").to_arrow()
    assert now.num_rows == 60 and now.column("label").to_pylist()[45] == "w45"
    # Opening from a folder inside the repository finds it, as the command line does.
    (d / "sub").mkdir()
    assert strata.open(d / "sub").path == repo.path


def test_the_cli_reads_what_python_wrote(tmp_path, cli):
    repo = strata.init(tmp_path / "r")
    repo.write("items", items(0, 30), primary_key="id")
    repo.commit("from python")
    repo.tag("py1")
    repo.write("items", items(10, 5, "x"), mode="upsert")
    repo.commit("python again")
    d = tmp_path / "r"
    log = cli(d, "log", "--oneline").stdout
    assert "python again" in log and "from python" in log
    assert export(cli, d, "items", tmp_path / "py1.parquet", rev="py1").equals(items(0, 30))
    head = export(cli, d, "items", tmp_path / "head.parquet")
    assert head.column("label").to_pylist()[12] == "x12"
    status = cli(d, "status").stdout
    assert "nothing to commit" in status.lower() or "clean" in status.lower() or status.strip() != ""
    # Working changes made in Python are seen by the CLI before they are committed.
    repo.write("items", items(100, 1), mode="append")
    assert "items" in cli(d, "status").stdout


def push_then_cli_pulls(tmp_path, cli, url, storage_options=None, clone_opts=()):
    repo = strata.init(tmp_path / "py")
    repo.write("items", items(0, 1000), primary_key="id", chunk_rows=256)
    repo.commit("first")
    remote = repo.add_remote("origin", url, storage_options=storage_options)
    assert repo.remotes == [remote]
    pushed = repo.push(set_upstream=True, create=True)
    assert pushed["updates"][0]["name"] == "main"
    assert pushed["updates"][0]["move"] == "created"

    cli(tmp_path, "clone", url, tmp_path / "cli", *clone_opts)
    d = tmp_path / "cli"
    assert export(cli, d, "items", tmp_path / "one.parquet").equals(items(0, 1000))

    repo.write("items", items(500, 10, "fix"), mode="upsert")
    second = repo.commit("a fix from python")
    repo.push()
    cli(d, "pull")
    assert export(cli, d, "items", tmp_path / "two.parquet").column("label").to_pylist()[505] == "fix505"
    assert second.startswith(cli(d, "log", "-n", "1", "--oneline").stdout.split()[0])

    # And back: the command line pushes, Python pulls.
    pacsv.write_csv(items(2000, 3, "cli"), tmp_path / "c.csv")
    cli(d, "import", "items", tmp_path / "c.csv", "--mode", "append")
    cli(d, "commit", "-m", "from the cli")
    cli(d, "push")
    pulled = repo.pull()
    assert pulled["outcome"]["outcome"] == "fast_forward"
    assert repo.table("items").num_rows == 1003
    assert repo.status()["upstream"]["behind"] == 0
    return repo


def test_push_from_python_pull_from_cli_through_a_folder(tmp_path, cli):
    push_then_cli_pulls(tmp_path, cli, str(tmp_path / "remote"))


def test_push_from_python_pull_from_cli_through_radosgw(tmp_path, cli, s3):
    endpoint, url = s3
    u = url("push")
    opts = {"endpoint": endpoint, "allow_http": True}
    repo = push_then_cli_pulls(
        tmp_path, cli, u, storage_options=opts,
        clone_opts=("--option", f"endpoint={endpoint}", "--option", "allow_http=true"),
    )
    # Python clones the S3 remote too, and fetches.
    other = strata.clone(u, tmp_path / "py2", storage_options=opts)
    assert other.table("items").num_rows == 1003
    assert other.remotes[0]["options"]["endpoint"] == endpoint
    repo.write("items", items(0, 1, "again"), mode="upsert")
    repo.commit("again")
    repo.push()
    fetched = other.fetch()
    assert fetched["updated"][0]["branch"] == "main"
    assert other.table("items", rev="origin/main").to_arrow(filter=0).column("label").to_pylist() == ["again0"]


def test_python_clones_a_folder_remote_and_checks_out_a_branch(tmp_path, cli):
    d = tmp_path / "src"
    cli(tmp_path, "init", d)
    pacsv.write_csv(items(0, 5), tmp_path / "a.csv")
    cli(d, "import", "items", tmp_path / "a.csv", "--primary-key", "id")
    cli(d, "commit", "-m", "one")
    cli(d, "branch", "dev")
    cli(d, "remote", "add", "origin", tmp_path / "remote")
    cli(d, "push", "--create", "origin", "main", "dev")
    c = strata.clone(str(tmp_path / "remote"), tmp_path / "clone", branch="dev")
    assert c.head == "dev"
    assert c.table("items").num_rows == 5
