"""Reads and writes release the GIL: another Python thread keeps running meanwhile."""

import threading
import time

import pyarrow as pa
import pytest

N = 2_000_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    import strata

    repo = strata.init(tmp_path_factory.mktemp("gil") / "repo")
    t = pa.table({
        "id": pa.array(range(N), pa.int64()),
        "name": pa.array([f"name-{i % 10007}" for i in range(N)]),
        "qty": pa.array(range(N), pa.int64()),
    })
    repo.write("big", t, primary_key="id")
    repo.commit("big", author="Test Person <test@example.com>")
    return repo, t


class Counter(threading.Thread):
    """Counts as fast as it can while it is allowed to run."""

    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.count += 1


def progress_during(action):
    c = Counter()
    c.start()
    time.sleep(0.05)
    before = c.count
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    after = c.count
    c.stop = True
    c.join()
    return after - before, elapsed, result


def test_a_long_read_lets_another_thread_run(big):
    repo, t = big
    steps, elapsed, table = progress_during(lambda: repo.table("big").to_arrow())
    assert table.num_rows == N
    assert elapsed > 0.05, "the read was too short to tell"
    # Holding the GIL for the whole read would leave the counter still (a few steps at most).
    assert steps > 10_000, f"the other thread made {steps} steps in {elapsed:.2f} s"


def test_a_streamed_read_lets_another_thread_run(big):
    repo, _ = big

    def read():
        return sum(b.num_rows for b in repo.table("big").to_batches())

    steps, elapsed, rows = progress_during(read)
    assert rows == N
    assert steps > 10_000, f"the other thread made {steps} steps in {elapsed:.2f} s"


def test_a_write_lets_another_thread_run(big, tmp_path):
    import strata

    _, t = big
    other = strata.init(tmp_path / "w")
    steps, elapsed, report = progress_during(lambda: other.write("copy", t, primary_key="id"))
    assert report["rows"] == N
    assert steps > 10_000, f"the other thread made {steps} steps in {elapsed:.2f} s"


def test_two_threads_read_at_once(big):
    repo, t = big
    results = []

    def read():
        results.append(repo.table("big").to_arrow(columns=["id"]).num_rows)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [N, N]


@pytest.mark.parametrize("reader", ["pyarrow", "polars", "duckdb"])
def test_other_readers_of_a_handle_let_another_thread_run(big, reader):
    import duckdb
    import polars as pl

    repo, _ = big
    handle = repo.table("big")

    def via_duckdb():
        big_table = handle  # DuckDB finds the handle among the caller's local variables.
        return duckdb.sql("SELECT count(*) FROM big_table").fetchall()[0][0]

    read = {
        "pyarrow": lambda: pa.table(handle).num_rows,
        "polars": lambda: pl.DataFrame(handle).height,
        "duckdb": via_duckdb,
    }[reader]
    steps, elapsed, rows = progress_during(read)
    assert rows == N
    assert steps > 10_000, f"the other thread made {steps} steps in {elapsed:.2f} s"
