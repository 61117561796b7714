"""Commits, history, branches, tags, diff and merge from Python."""

import pyarrow as pa
import pytest

import strata


def rows(**cols):
    return pa.table(cols)


def test_commit_log_status_show(repo):
    assert repo.status()["tables"] == []
    repo.write("t", rows(id=[1, 2], v=["a", "b"]), primary_key="id")
    st = repo.status()
    assert st["branch"] == "main"
    assert st["tables"][0]["table"] == "t" and st["tables"][0]["state"] == "added"
    first = repo.commit("first", author="Ann <ann@example.com>")
    assert len(first) == 64
    repo.write("t", rows(id=[3], v=["c"]), mode="append")
    second = repo.commit("second")
    log = repo.log()
    assert [c["id"] for c in log] == [second, first]
    assert log[0]["message"] == "second"
    assert log[1]["author"] == "Ann <ann@example.com>"
    assert log[0]["parents"] == [first]
    assert [c["id"] for c in repo.log(n=1)] == [second]
    assert [c["id"] for c in repo.log(rev="HEAD~1")] == [first]
    shown = repo.show()
    assert shown["id"] == second
    assert shown["changes"][0]["added"] == 1
    assert repo.resolve("HEAD~1") == first
    assert repo.head == "main"
    assert str(repo.path).endswith("repo")


def test_time_travel(repo):
    repo.write("t", rows(id=[1], v=["old"]), primary_key="id")
    repo.commit("one")
    repo.tag("v1")
    repo.write("t", rows(id=[1], v=["new"]), mode="upsert")
    repo.commit("two")
    assert repo.table("t", rev="v1").to_arrow().column("v").to_pylist() == ["old"]
    assert repo.table("t", rev="HEAD~1").to_arrow().column("v").to_pylist() == ["old"]
    assert repo.table("t").to_arrow().column("v").to_pylist() == ["new"]
    # A handle keeps the commit it was made for, even when the branch moves on.
    h = repo.table("t", rev="main")
    repo.write("t", rows(id=[1], v=["newer"]), mode="upsert")
    repo.commit("three")
    assert h.to_arrow().column("v").to_pylist() == ["new"]
    assert h.rev == "main" and len(h.commit) == 64


def test_branches_tags_checkout(repo):
    repo.write("t", rows(id=[1], v=["a"]), primary_key="id")
    c1 = repo.commit("one")
    assert repo.branch("feature") == c1
    assert repo.tag("v1") == c1
    assert [b["name"] for b in repo.branches()] == ["feature", "main"]
    assert [b["current"] for b in repo.branches()] == [False, True]
    assert repo.tags() == [{"name": "v1", "commit": c1, "current": False}]
    repo.checkout("feature")
    assert repo.head == "feature"
    repo.write("t", rows(id=[2], v=["b"]), mode="append")
    c2 = repo.commit("on feature")
    repo.checkout("main")
    assert repo.table("t").num_rows == 1
    repo.checkout(c2)
    assert repo.head is None and repo.status()["detached"] == c2
    repo.checkout("main")
    with pytest.raises(strata.InvalidStateError, match="not merged") as e:
        repo.delete_branch("feature")
    assert "force=True" in str(e.value)
    assert repo.delete_branch("feature", force=True) == c2
    assert repo.delete_tag("v1") == c1
    assert repo.tags() == []


def test_checkout_refuses_uncommitted_changes_unless_forced(repo):
    repo.write("t", rows(id=[1], v=["a"]), primary_key="id")
    repo.commit("one")
    repo.branch("other")
    repo.write("t", rows(id=[2], v=["b"]), mode="append")
    with pytest.raises(strata.InvalidStateError, match="commit them first with repo.commit"):
        repo.checkout("other")
    repo.checkout("other", force=True)
    assert repo.table("t").num_rows == 1


def test_reset_hard_discards_working_changes(repo):
    repo.write("t", rows(id=[1], v=["a"]), primary_key="id")
    c = repo.commit("one")
    repo.write("t", rows(id=[2], v=["b"]), mode="append")
    assert repo.reset_hard() == c
    assert repo.status()["tables"] == []


def test_diff_as_arrow(repo):
    repo.write("t", rows(id=[1, 2, 3], v=["a", "b", "c"], n=[1.5, 2.5, 3.5]), primary_key="id")
    repo.commit("one")
    repo.write("t", rows(id=[2, 4], v=["B", "d"], n=[2.5, 4.5]), mode="upsert")
    repo.delete("t", [3])
    d = repo.diff(table="t")
    assert isinstance(d, pa.Table)
    assert d.column_names == ["id", "kind", "old_v", "new_v", "old_n", "new_n"]
    assert d.schema.field("id").type == pa.int64()
    assert d.schema.field("new_n").type == pa.float64()
    assert d.to_pylist() == [
        {"id": 2, "kind": "modified", "old_v": "b", "new_v": "B", "old_n": 2.5, "new_n": 2.5},
        {"id": 3, "kind": "removed", "old_v": "c", "new_v": None, "old_n": 3.5, "new_n": None},
        {"id": 4, "kind": "added", "old_v": None, "new_v": "d", "old_n": None, "new_n": 4.5},
    ]
    c2 = repo.commit("two")
    between = repo.diff("HEAD~1", c2)
    assert set(between) == {"t"}
    assert between["t"].num_rows == 3
    assert repo.diff() == {}


def test_diff_keeps_types_and_follows_schema_changes(repo):
    import datetime as dt
    from decimal import Decimal

    repo.write(
        "t",
        pa.table({
            "day": pa.array([dt.date(2024, 1, 1)], pa.date32()),
            "at": pa.array([dt.datetime(2024, 1, 1, 8, 30)], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([Decimal("1.10")], pa.decimal128(6, 2)),
            "raw": pa.array([b"\x00\x01"], pa.binary()),
        }),
        primary_key="day",
    )
    repo.commit("one")
    repo.write(
        "t",
        pa.table({
            "day": pa.array([dt.date(2024, 1, 1)], pa.date32()),
            "at": pa.array([dt.datetime(2024, 1, 1, 9, 0)], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([Decimal("2.20")], pa.decimal128(6, 2)),
            "note": ["new column"],
        }),
        mode="replace",
    )
    d = repo.diff(table="t")
    assert d.schema.field("day").type == pa.date32()
    assert d.schema.field("old_amount").type == pa.decimal128(6, 2)
    assert d.schema.field("old_at").type == pa.timestamp("us", tz="UTC")
    assert "old_raw" in d.column_names and "new_raw" not in d.column_names
    assert "new_note" in d.column_names and "old_note" not in d.column_names
    row = d.to_pylist()[0]
    assert row["kind"] == "modified"
    assert row["old_amount"] == Decimal("1.10") and row["new_amount"] == Decimal("2.20")
    assert row["old_raw"] == b"\x00\x01"
    assert row["new_at"].hour == 9


def test_merge_fast_forward_merged_and_conflicts(repo):
    repo.write("t", rows(id=[1, 2, 3], v=["a", "b", "c"]), primary_key="id")
    repo.commit("base")
    repo.branch("feature")
    repo.checkout("feature")
    repo.write("t", rows(id=[1], v=["feature"]), mode="upsert")
    repo.commit("feature edit")
    repo.checkout("main")
    ff = repo.merge("feature")
    assert ff["outcome"] == "fast_forward" and ff["conflicts"] == []
    assert repo.merge("feature")["outcome"] == "up_to_date"

    repo.checkout("feature")
    repo.write("t", rows(id=[2], v=["theirs"]), mode="upsert")
    repo.write("t", rows(id=[3], v=["theirs3"]), mode="upsert")
    repo.commit("feature again")
    repo.checkout("main")
    repo.write("t", rows(id=[2], v=["ours"]), mode="upsert")
    repo.write("t", rows(id=[4], v=["d"]), mode="append")
    repo.commit("main edit")
    out = repo.merge("feature")
    assert out["outcome"] == "conflicts"
    assert out["rows"] == 1 and out["tables"] == ["t"]
    (c,) = out["conflicts"]
    assert c["key"] == {"id": 2} and c["kind"] == "modify/modify"
    assert c["cells"] == [{"column": "v", "base": "b", "ours": "ours", "theirs": "theirs"}]
    assert repo.conflicts() == out["conflicts"]
    assert repo.status()["merging"]["name"] == "feature"
    with pytest.raises(strata.StrataError, match="merge of 'feature' is in progress"):
        repo.checkout("feature")
    assert repo.resolve_conflicts("theirs") == (1, 0)
    repo.commit("merged")
    assert repo.table("t").to_arrow().column("v").to_pylist() == ["feature", "theirs", "theirs3", "d"]
    assert repo.conflicts() is None


def test_merge_abort(repo):
    repo.write("t", rows(id=[1], v=["a"]), primary_key="id")
    repo.commit("base")
    repo.branch("f")
    repo.write("t", rows(id=[1], v=["main"]), mode="upsert")
    repo.commit("m")
    repo.checkout("f")
    repo.write("t", rows(id=[1], v=["f"]), mode="upsert")
    repo.commit("f")
    assert repo.merge("main")["outcome"] == "conflicts"
    repo.merge_abort()
    assert repo.table("t").to_arrow().column("v").to_pylist() == ["f"]
    assert repo.status()["merging"] is None


def test_amend_reflog_revert_cherry_pick_and_ranges(repo):
    repo.write("t", rows(id=[1, 2], v=["a", "b"]), primary_key="id")
    first = repo.commit("first")
    repo.write("t", rows(id=[3], v=["c"]), mode="append")
    second = repo.commit("second")
    repo.write("t", rows(id=[4], v=["d"]), mode="append")
    amended = repo.commit(message="second, with d", amend=True)
    assert amended != second
    assert repo.log(n=1)[0]["parents"] == [first]
    assert repo.log(n=1)[0]["message"] == "second, with d"
    log = repo.reflog()
    assert [e["selector"] for e in log] == ["main@{0}", "main@{1}", "main@{2}"]
    assert log[0]["reason"] == "commit (amend): second, with d"
    assert repo.resolve("main@{1}") == second

    reverted = repo.revert("HEAD")
    assert repo.table("t").to_arrow().column("id").to_pylist() == [1, 2]
    assert repo.log(n=1)[0]["message"].startswith('Revert "second, with d"')

    repo.branch("side", start=first)
    repo.checkout("side")
    repo.write("t", rows(id=[9], v=["z"]), mode="append")
    side = repo.commit("side adds 9")
    repo.checkout("main")
    picked = repo.cherry_pick("side", record_origin=True)
    assert picked != side
    assert f"(cherry picked from commit {side})" in repo.log(n=1)[0]["message"]
    assert 9 in repo.table("t").to_arrow().column("id").to_pylist()

    assert [c["id"] for c in repo.log(rev="main..side")] == [side]
    assert {c["id"] for c in repo.log(all=True)} >= {first, amended, reverted, side, picked}
    assert repo.merge_base("main", "side") == first

    repo.tag("v1", message="release one")
    v1 = [t for t in repo.tags() if t["name"] == "v1"][0]
    assert v1["note"]["message"] == "release one"


def test_a_conflicting_revert_raises_and_changes_nothing(repo):
    repo.write("t", rows(id=[1], v=["a"]), primary_key="id")
    repo.commit("first")
    repo.write("t", rows(id=[1], v=["b"]), mode="upsert")
    repo.commit("to b")
    repo.write("t", rows(id=[1], v=["c"]), mode="upsert")
    head = repo.commit("to c")
    with pytest.raises(strata.ConflictError, match="nothing was changed"):
        repo.revert("HEAD~1")
    assert repo.resolve("HEAD") == head
    with pytest.raises(strata.InvalidInputError):
        repo.commit()


def test_diff_where_and_alter_table(repo):
    repo.write("t", rows(id=[1, 2, 3], price=[5.0, 20.0, 30.0]), primary_key="id")
    repo.commit("first")
    repo.write("t", rows(id=[1, 2], price=[50.0, 2.0]), mode="upsert")
    changed = repo.diff(table="t", where="to_price > 10")
    assert changed.column("id").to_pylist() == [1]
    both = repo.diff(table="t", where="price > 10")
    assert both.column("id").to_pylist() == [1, 2]
    with pytest.raises(strata.InvalidInputError):
        repo.diff(table="t", where="price >")
    repo.commit("second")

    report = repo.alter_table(
        "t", [("add", "note", "utf8", "none"), ("rename", "price", "cost"), ("set_type", "id", "int64")]
    )
    assert report["table"] == "t"
    table = repo.table("t").to_arrow()
    assert table.column_names == ["id", "cost", "note"]
    assert table.column("note").to_pylist() == ["none", "none", "none"]
    with pytest.raises(strata.InvalidInputError):
        repo.alter_table("t", [("drop", "id")])
    with pytest.raises(strata.InvalidInputError):
        repo.alter_table("t", [("explode", "id")])
