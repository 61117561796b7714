"""Every exception class, raised by a real case, with the library's message and advice in
Python's words."""

import json
import os

import pyarrow as pa
import pytest

import strata

ALL = [
    strata.ConflictError, strata.NotFoundError, strata.AlreadyExistsError, strata.CorruptError,
    strata.InvalidInputError, strata.InvalidStateError, strata.UnavailableError,
    strata.PermissionDeniedError, strata.UnsupportedError, strata.StrataIOError,
]


def one(repo, name="t"):
    repo.write(name, pa.table({"id": [1, 2], "v": ["a", "b"]}), primary_key="id")
    return repo.commit("one")


def test_the_classes_share_a_base():
    for cls in ALL:
        assert issubclass(cls, strata.StrataError) and issubclass(cls, Exception)
        assert cls.__module__ == "strata"
    assert len(set(ALL)) == 10


def test_conflict_an_existing_key(repo):
    one(repo)
    with pytest.raises(strata.ConflictError, match=r"write with mode='upsert'") as e:
        repo.write("t", pa.table({"id": [2], "v": ["x"]}), mode="append")
    assert e.value.kind == "conflict"
    assert e.value.advice == "write with mode='upsert' to overwrite it"


def behind_the_remote(tmp_path):
    """A repository with a commit of its own, whose remote branch moved since it pushed."""
    a = strata.init(tmp_path / "a")
    one(a)
    a.add_remote("origin", str(tmp_path / "remote"))
    a.push(set_upstream=True, create=True)
    b = strata.clone(str(tmp_path / "remote"), tmp_path / "b")
    b.write("t", pa.table({"id": [3], "v": ["b"]}), mode="append")
    b.commit("from b")
    b.push()
    a.write("t", pa.table({"id": [4], "v": ["a"]}), mode="append")
    return a, a.commit("from a")


def test_conflict_a_push_that_is_not_a_fast_forward(tmp_path):
    a, _ = behind_the_remote(tmp_path)
    with pytest.raises(strata.ConflictError, match=r"repo.pull\(\)"):
        a.push(merge=False)
    # The advice works: pull merges, then the push goes through.
    assert a.pull()["outcome"]["outcome"] == "merged"
    a.push()


def test_a_push_after_the_remote_moved_merges_it_in_by_default(tmp_path):
    a, mine = behind_the_remote(tmp_path)
    report = a.push()
    assert report["rounds"] == 2 and len(report["merges"]) == 1
    assert a.log()[0]["parents"][0] == mine
    assert sorted(a.table("t").to_arrow().column("id").to_pylist()) == [1, 2, 3, 4]


def test_not_found(repo, tmp_path):
    one(repo)
    with pytest.raises(strata.NotFoundError, match=r"nope.*repo.tables\(\) lists the tables") as e:
        repo.table("nope")
    assert e.value.kind == "not_found"
    with pytest.raises(strata.NotFoundError, match="repo.branches"):
        repo.delete_branch("nope")
    with pytest.raises(strata.NotFoundError, match="REV~N"):
        repo.table("t", rev="no-such-rev")
    with pytest.raises(strata.NotFoundError, match=r"strata.init\(path\)"):
        strata.open(tmp_path / "empty")
    with pytest.raises(strata.NotFoundError, match=r"repo.add_remote\('origin', url\)"):
        repo.push()


def test_already_exists(repo):
    one(repo)
    with pytest.raises(strata.AlreadyExistsError, match="mode='append', 'upsert' or 'replace'"):
        repo.write("t", pa.table({"id": [9], "v": ["z"]}), primary_key="id")
    repo.branch("b")
    with pytest.raises(strata.AlreadyExistsError, match="'b'"):
        repo.branch("b")
    with pytest.raises(strata.AlreadyExistsError):
        strata.init(repo.path)


def test_corrupt_a_damaged_chunk(repo):
    one(repo)
    chunks = [
        os.path.join(d, f)
        for d, _, files in os.walk(os.path.join(repo.path, ".strata", "chunks"))
        for f in files
    ]
    assert chunks
    for path in chunks:
        with open(path, "r+b") as f:
            f.seek(8)
            f.write(b"damaged!")
    with pytest.raises(strata.CorruptError, match="fsck --repair") as e:
        repo.table("t").to_arrow()
    assert e.value.kind == "corrupt"
    # Through a stream too: the error reaches the consumer.
    with pytest.raises(strata.CorruptError):
        for _ in repo.table("t").to_batches():
            pass


def test_invalid_input(repo):
    one(repo)
    with pytest.raises(strata.InvalidInputError, match="Name <email>"):
        repo.commit("x", author="nobody")
    with pytest.raises(strata.InvalidInputError, match="key columns"):
        repo.write("new", pa.table({"id": [1]}))
    with pytest.raises(strata.InvalidInputError, match="cannot write a builtins.int"):
        repo.write("t", 5, mode="append")
    with pytest.raises(strata.InvalidInputError, match="'ours' or 'theirs'"):
        repo.resolve_conflicts("mine")
    with pytest.raises(strata.InvalidInputError, match="secret"):
        repo.add_remote("o", "s3://bucket/p", storage_options={"aws_secret_access_key": "x"})
    with pytest.raises(strata.InvalidInputError, match="secret"):
        strata.open("s3://bucket/prefix", storage_options={"aws_secret_access_key": "x"})


def test_invalid_state(repo):
    one(repo)
    with pytest.raises(strata.InvalidStateError, match="nothing to commit") as e:
        repo.commit("again")
    assert e.value.kind == "invalid_state"
    with pytest.raises(strata.InvalidStateError, match="check out another branch first"):
        repo.delete_branch("main")


def test_unavailable_an_endpoint_nobody_answers(repo):
    with pytest.raises(strata.UnavailableError, match="cannot reach the storage endpoint") as e:
        repo.add_remote(
            "dead", "s3://bucket/p",
            storage_options={"endpoint": "http://127.0.0.1:9", "allow_http": "true"},
        )
    assert e.value.kind == "unavailable"


def test_permission_denied_credentials_without_access(repo, s3, monkeypatch):
    endpoint, url = s3
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "outsider")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "outsidersecret")
    with pytest.raises(strata.PermissionDeniedError, match="permission denied") as e:
        repo.add_remote("o", url("denied"), storage_options={"endpoint": endpoint, "allow_http": "true"})
    assert "outsidersecret" not in str(e.value)
    assert e.value.kind == "permission_denied"


def test_unsupported(repo):
    with pytest.raises(strata.UnsupportedError, match="tags"):
        repo.write("t", pa.table({"id": [1], "tags": [[1, 2]]}), primary_key="id")
    marker = os.path.join(repo.path, ".strata", "strata.json")
    with open(marker) as f:
        m = json.load(f)
    m["format"] = 999
    with open(marker, "w") as f:
        json.dump(m, f)
    with pytest.raises(strata.UnsupportedError, match="999"):
        strata.open(repo.path)


def test_io_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(strata.StrataIOError) as e:
        strata.init(tmp_path / "file" / "repo")
    assert e.value.kind == "io"
