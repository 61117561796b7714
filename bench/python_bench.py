"""Benchmark of the Python package beside pyarrow, in one run.

Generates the benchmark table (id int64 key 0..N-1, name of 12-20 letters, qty int64,
price float64, tag of 100 values: the generator of bench/src/main.rs), writes it with pyarrow
to one zstd Parquet file, imports it into a Strata repository through the `strata` package,
then measures:

- pyarrow.parquet.read_table of that file;
- Table.to_arrow() of the newest revision and of the first one (after more commits);
- a one-row upsert + commit (median of several);
- the peak memory of each read (peak RSS of a fresh process, less what it held before the
  read), against the Arrow size of the table.

Each read runs in a fresh process, three times, and the readers take turns in three such
rounds: the median of the rounds' median times is reported, and the peak memory of the first
read of the first round.

Usage: python bench/python_bench.py [--rows N] [--keep DIR]
(bench/run.sh installs the package and runs this beside the command line's figures.)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH = 1 << 20
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix(i, s):
    """splitmix64 of row numbers `i` (uint64 array) and stream `s`, as bench/src/main.rs."""
    with np.errstate(over="ignore"):
        z = i * np.uint64(0x9E3779B97F4A7C15) + np.uint64((s * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def batch(start, n):
    i = np.arange(start, start + n, dtype=np.uint64)
    lengths = (12 + mix(i, 1) % np.uint64(9)).astype(np.int64)
    letters = np.empty((n, 20), dtype=np.uint8)
    for j in range(20):
        letters[:, j] = (ord("a") + mix(i, 100 + j) % np.uint64(26)).astype(np.uint8)
    keep = np.arange(20)[None, :] < lengths[:, None]
    data = letters[keep]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    names = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    tag_values = pa.array([f"tag{k:02}" for k in range(100)])
    tags = pa.DictionaryArray.from_arrays(
        pa.array((mix(i, 4) % np.uint64(100)).astype(np.int32)), tag_values
    ).cast(pa.string())
    return pa.record_batch(
        {
            "id": pa.array(i.astype(np.int64)),
            "name": names,
            "qty": pa.array((mix(i, 2) % np.uint64(1000)).astype(np.int64)),
            "price": pa.array((mix(i, 3) % np.uint64(100_000)).astype(np.float64) / 100.0),
            "tag": tags,
        }
    )


def table(rows):
    return pa.Table.from_batches([batch(s, min(BATCH, rows - s)) for s in range(0, rows, BATCH)])


def status_mib(field):
    """A memory figure of this process (VmRSS: now, VmHWM: its peak). VmHWM starts afresh with
    the program, unlike getrusage's max RSS, which a child inherits from its parent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(kind, path, rev):
    """One measurement in this (fresh) process: prints times and memory as JSON."""
    if kind == "pyarrow":
        read = lambda: pq.read_table(path)  # noqa: E731
        warm = lambda: pq.ParquetFile(path).read_row_group(0, columns=["id"])  # noqa: E731
    else:
        import strata

        repo = strata.open(path)
        rev, _, what = rev.partition(":")
        handle = repo.table("bench", rev=rev or None)
        if what == "column":
            # One column of five.
            read = lambda: handle.to_arrow(columns=["qty"])  # noqa: E731
        elif what == "range":
            # 1% of the keys, from the middle of the table.
            n = handle.num_rows
            lo = n // 2
            read = lambda: handle.to_arrow(filter=slice(lo, lo + n // 100))  # noqa: E731
        else:
            read = lambda: handle.to_arrow()  # noqa: E731
        warm = lambda: handle.to_arrow(filter=0)  # noqa: E731
    # A small read first, so that libraries, codecs and thread pools are not counted.
    warm()
    before = status_mib("VmRSS")
    times = []
    rows = nbytes = 0
    peak = None
    for _ in range(3):
        t = time.perf_counter()
        result = read()
        times.append(time.perf_counter() - t)
        rows, nbytes = result.num_rows, result.get_total_buffer_size()
        if peak is None:
            # The first read's peak: later ones reuse memory the allocators kept, or add to it.
            peak = status_mib("VmHWM")
        del result
    print(json.dumps({"secs": statistics.median(times), "all": times, "rows": rows,
                      "arrow_mib": nbytes / 2**20, "peak_mib": peak - before}))


def measure(kind, path, rev=""):
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), rev],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--keep", help="work in this folder and keep it")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    import strata

    n = args.rows
    work = args.keep or tempfile.mkdtemp(prefix="strata-pybench-")
    os.makedirs(work, exist_ok=True)
    t = time.perf_counter()
    data = table(n)
    gen = time.perf_counter() - t
    pfile = os.path.join(work, "bench.parquet")
    t = time.perf_counter()
    pq.write_table(data, pfile, compression="zstd")
    pwrite = time.perf_counter() - t
    print(f"== Python package, {n} rows (generated in {gen:.1f} s; Arrow {data.get_total_buffer_size() / 2**20:.0f} MiB; "
          f"zstd Parquet {os.path.getsize(pfile) / 2**20:.0f} MiB written by pyarrow in {pwrite:.2f} s)")

    repo_dir = os.path.join(work, "repo")
    repo = strata.init(repo_dir)
    author = "Bench <bench@localhost>"
    t = time.perf_counter()
    repo.write("bench", data, primary_key="id")
    repo.commit("import", author=author)
    imported = time.perf_counter() - t
    # pyarrow writes once more after the import, so that both sides meet the same spell of
    # the machine; the quicker of its two writes is the floor.
    t = time.perf_counter()
    pq.write_table(data, pfile, compression="zstd")
    pwrite = min(pwrite, time.perf_counter() - t)
    del data

    upserts = []
    for k in range(7):
        row = (n // 7) * (k + 1) % n
        one = pa.table({"id": pa.array([row], pa.int64()), "name": ["changedname"], "qty": pa.array([1], pa.int64()),
                        "price": [1.5], "tag": ["tag01"]})
        t = time.perf_counter()
        repo.write("bench", one, mode="upsert")
        repo.commit("one row", author=author)
        upserts.append(time.perf_counter() - t)

    # Three rounds, each reader in turn, so that a slow spell of a shared machine falls on all
    # of them: a reader's time is the median of its rounds' medians.
    rounds = [[measure("pyarrow", pfile), measure("strata", repo_dir, "HEAD"),
               measure("strata", repo_dir, "HEAD~7"), measure("strata", repo_dir, "HEAD:column"),
               measure("strata", repo_dir, "HEAD:range")] for _ in range(3)]

    def combine(i):
        runs = [r[i] for r in rounds]
        out = dict(runs[0])
        out["secs"] = statistics.median(r["secs"] for r in runs)
        return out

    py, newest, first, column, keys = (combine(i) for i in range(5))
    assert py["rows"] == newest["rows"] == first["rows"] == column["rows"] == n
    assert keys["rows"] == n // 100

    def ratio(x):
        return x["secs"] / py["secs"]

    def first_ratio(x):
        return x["all"][0] / py["all"][0]

    print(f"{'':34} {'median s':>8} {'vs pyarrow':>10} {'1st read s':>10} {'vs pyarrow':>10} {'peak MiB':>9} {'vs Arrow':>8}")
    for label, r in [("pyarrow.parquet.read_table", py), ("strata to_arrow, newest", newest),
                     ("strata to_arrow, first revision", first)]:
        print(f"{label:34} {r['secs']:8.2f} {ratio(r):9.2f}x {r['all'][0]:10.2f} {first_ratio(r):9.2f}x "
              f"{r['peak_mib']:9.0f} {r['peak_mib'] / r['arrow_mib']:7.2f}x")
    chunks = strata.open(repo_dir).table("bench")
    lo = n // 2
    touched = chunks.chunks_read(slice(lo, lo + n // 100))
    print(f"one column of five (qty): {column['secs']:.3f} s = {column['secs'] / newest['secs']:.2f}x the full read "
          f"(target <= 0.3x)")
    print(f"1% of the keys (a key range): {keys['secs'] * 1000:.1f} ms = {keys['secs'] / newest['secs']:.3f}x the full read "
          f"(target <= 0.05x); {touched} of {chunks.num_chunks} chunks read = "
          f"{touched / chunks.num_chunks * 100:.1f}% (target <= 2%)")
    print("(targets: read time <= 1.0x pyarrow's; peak memory <= 1.3x the Arrow size. The first read of a\n"
          " process also pays for the memory it takes from the system; later ones reuse what the allocators kept.)")
    print(f"import through the package (write + commit, Arrow in): {imported:.2f} s; pyarrow's zstd write of the same "
          f"rows: {pwrite:.2f} s = {imported / pwrite:.2f}x (target <= 1.2x)")
    print(f"one-row upsert + commit: median {statistics.median(upserts) * 1000:.1f} ms "
          f"(max {max(upserts) * 1000:.1f} ms; target <= 10)")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
