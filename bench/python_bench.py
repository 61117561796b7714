"""Benchmark of the Python package beside pyarrow, in one run.

Generates the benchmark table (id int64 key 0..N-1, name of 12-20 letters, qty int64,
price float64, tag of 100 values: the generator of bench/src/main.rs), writes it with pyarrow
to one zstd Parquet file, imports it into a Strata repository through the `strata` package,
then measures:

- pyarrow.parquet.read_table of that file;
- Table.to_arrow() of the newest revision and of the first one (after more commits);
- a one-row upsert + commit (median of several), and the bytes it adds;
- a one-row delete + commit (median of three, after the reads), and the bytes it adds;
- the bytes an append of 1,000 rows adds, and the diff of one update and that append;
- the peak memory of each read (peak RSS of a fresh process, less what it held before the
  read), against the Arrow size of the table.

When deltalake and pylance are installed (bench/run.sh installs them), the same rows go
through them too, step by step (import from Arrow, one-row upserts, the append, reads of the
newest and the first version, one-row deletes), and the run ends with one table: every step of every tool
beside the pyarrow floor, all from this run.

Each read runs in a fresh process, three times, and the readers take turns in three such
rounds, each in another order: the median of the rounds' median times is reported, and the
peak memory of the reader's first read in the first round.

Usage: python bench/python_bench.py [--rows N] [--keep DIR]
(bench/run.sh installs the package and runs this beside the command line's figures.)
"""

import argparse
import json
import random
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
    elif kind == "delta":
        from deltalake import DeltaTable

        version = 0 if rev == "first" else None
        read = lambda: DeltaTable(path, version=version).to_pyarrow_table()  # noqa: E731
        warm = lambda: DeltaTable(path).to_pyarrow_table(columns=["id"], filters=[("id", "=", 0)])  # noqa: E731
    elif kind == "lance":
        import lance

        version = 1 if rev == "first" else None
        read = lambda: lance.dataset(path, version=version).to_table()  # noqa: E731
        warm = lambda: lance.dataset(path).to_table(columns=["id"], limit=1)  # noqa: E731
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
                      "arrow_mib": nbytes / 2**20, "peak_mib": peak - before}), flush=True)
    # Leave without running the interpreter's teardown: deltalake 1.6's reader aborts the
    # process there ("terminate called without an active exception") once its work is done.
    os._exit(0)


def measure(kind, path, rev=""):
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), rev],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)

PEERS = [("delta", "deltalake", "delta-rs"), ("lance", "lance", "Lance")]


def peer_version(module):
    """The version of a peer's package, or None when it is not installed."""
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def size(nbytes):
    return f"{nbytes / 1024:.1f} KiB" if nbytes < 2**20 else f"{nbytes / 2**20:.1f} MiB"


def flush(path):
    """fsync of a file and of its folder."""
    for p in (path, os.path.dirname(os.path.abspath(path))):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def one_row(row, k):
    return pa.table({"id": pa.array([row], pa.int64()), "name": [f"changedname{k}"],
                     "qty": pa.array([1], pa.int64()), "price": [1.5], "tag": ["tag01"]})


def peer_write(kind, path, data, mode):
    """A peer's import ("create"), append ("append") or upsert on the key ("upsert")."""
    if kind == "delta":
        from deltalake import DeltaTable, write_deltalake

        if mode == "upsert":
            (DeltaTable(path).merge(data, predicate="t.id = s.id", source_alias="s", target_alias="t")
             .when_matched_update_all().when_not_matched_insert_all().execute())
        else:
            write_deltalake(path, data, mode="append" if mode == "append" else "error")
    else:
        import lance

        if mode == "upsert":
            (lance.dataset(path).merge_insert("id").when_matched_update_all()
             .when_not_matched_insert_all().execute(data))
        else:
            lance.write_dataset(data, path, mode="append" if mode == "append" else "create")


def edits(n, write, path):
    """Seven one-row upserts, then an append of 1,000 new rows, each through `write(data,
    mode)`: the upserts' median time and bytes added, and the append's bytes added."""
    # What earlier steps left to write back to disk (the imports of every tool, a few hundred
    # MiB) is written first, so that no tool's flushes wait on another's.
    os.sync()
    times, added = [], []
    for k in range(7):
        one = one_row((n // 7) * (k + 1) % n, k)
        before = dir_bytes(path)
        t = time.perf_counter()
        write(one, "upsert")
        times.append(time.perf_counter() - t)
        added.append(dir_bytes(path) - before)
    before = dir_bytes(path)
    write(pa.Table.from_batches([batch(n, 1000)]), "append")
    return {"upsert_secs": statistics.median(times), "upsert_max": max(times),
            "upsert_bytes": statistics.median(added), "append_bytes": dir_bytes(path) - before}


def peer_delete(kind, path, key):
    """A peer's delete of the row with key `key`."""
    if kind == "delta":
        from deltalake import DeltaTable

        DeltaTable(path).delete(f"id = {key}")
    else:
        import lance

        lance.dataset(path).delete(f"id = {key}")


def deletes(n, delete, path):
    """Three one-row deletes, each through `delete(key)`: their median time and bytes added."""
    os.sync()
    times, added = [], []
    for k in range(3):
        before = dir_bytes(path)
        t = time.perf_counter()
        delete((n // 5) * (k + 1) + 3)
        times.append(time.perf_counter() - t)
        added.append(dir_bytes(path) - before)
    return {"delete_secs": statistics.median(times), "delete_bytes": statistics.median(added)}


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
    first_commit = repo.commit("import", author=author)
    imported = time.perf_counter() - t
    # pyarrow writes once more after the import, so that both sides meet the same spell of
    # the machine; the quicker of its two writes is the floor. The second is also flushed to
    # disk (the file and its folder), as everything a Strata import stores is.
    t = time.perf_counter()
    pq.write_table(data, pfile, compression="zstd")
    pwrite = min(pwrite, time.perf_counter() - t)
    t = time.perf_counter()
    flush(pfile)
    # The floor's write, plus what flushing the same file took.
    pflushed = pwrite + time.perf_counter() - t

    peers = {}
    for kind, module, label in PEERS:
        version = peer_version(module)
        if version is None:
            continue
        path = os.path.join(work, kind)
        t = time.perf_counter()
        peer_write(kind, path, data, "create")
        peers[kind] = {"label": f"{label} {version}", "path": path, "import_secs": time.perf_counter() - t}
    del data

    def strata_write(data, mode):
        repo.write("bench", data, mode=mode)
        repo.commit("one row" if mode == "upsert" else "1,000 rows", author=author)

    mine = edits(n, strata_write, repo_dir)
    t = time.perf_counter()
    changes = repo.diff("HEAD~2", "HEAD", table="bench")
    diff_secs = time.perf_counter() - t
    assert changes.num_rows == 1001, changes.num_rows
    for kind, p in peers.items():
        p.update(edits(n, lambda data, mode: peer_write(kind, p["path"], data, mode), p["path"]))

    # Three rounds, each reader in turn, so that a slow spell of a shared machine falls on all
    # of them: a reader's time is the median of its rounds' medians. Each round takes the
    # readers in another order (shuffled, the same in every run): a reader that comes just
    # after a large one (pyarrow's read leaves 900 MiB to give back) was measured slower.
    readers = [("pyarrow", pfile, ""), ("strata", repo_dir, "HEAD"), ("strata", repo_dir, first_commit),
               ("strata", repo_dir, "HEAD:column"), ("strata", repo_dir, "HEAD:range")]
    for kind, p in peers.items():
        readers += [(kind, p["path"], "newest"), (kind, p["path"], "first")]
    rounds = []
    for r in range(3):
        order = list(range(len(readers)))
        random.Random(r).shuffle(order)
        got = {i: measure(*readers[i]) for i in order}
        rounds.append([got[i] for i in range(len(readers))])

    def combine(i):
        runs = [r[i] for r in rounds]
        out = dict(runs[0])
        out["secs"] = statistics.median(r["secs"] for r in runs)
        return out

    py, newest, first, column, keys = (combine(i) for i in range(5))

    # One-row deletes, after the reads (which count the rows).
    def strata_delete(key):
        repo.delete("bench", [key])
        repo.commit("one row less", author=author)

    mine.update(deletes(n, strata_delete, repo_dir))
    for kind, p in peers.items():
        p.update(deletes(n, lambda key: peer_delete(kind, p["path"], key), p["path"]))
    for j, p in enumerate(peers.values()):
        p["newest"], p["first"] = combine(5 + 2 * j), combine(6 + 2 * j)
        assert p["newest"]["rows"] == n + 1000 and p["first"]["rows"] == n, p["label"]
    assert py["rows"] == first["rows"] == n
    assert newest["rows"] == column["rows"] == n + 1000
    total = n + 1000  # the newest version's rows, which the key-range read takes 1% of
    assert keys["rows"] == total // 100

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
    lo = total // 2
    touched = chunks.chunks_read(slice(lo, lo + total // 100))
    print(f"one column of five (qty): {column['secs']:.3f} s = {column['secs'] / newest['secs']:.2f}x the full read "
          f"(target <= 0.3x)")
    print(f"1% of the keys (a key range): {keys['secs'] * 1000:.1f} ms = {keys['secs'] / newest['secs']:.3f}x the full read "
          f"(target <= 0.05x); {touched} of {chunks.num_chunks} chunks read = "
          f"{touched / chunks.num_chunks * 100:.1f}% (target <= 2%)")
    print("(targets: read time <= 1.0x pyarrow's; peak memory <= 1.3x the Arrow size. The first read of a\n"
          " process also pays for the memory it takes from the system; later ones reuse what the allocators kept.)")
    print(f"import through the package (write + commit, Arrow in): {imported:.2f} s; pyarrow's zstd write of the same "
          f"rows: {pwrite:.2f} s = {imported / pwrite:.2f}x (target <= 1.2x); that write flushed to disk: "
          f"{pflushed:.2f} s = {imported / pflushed:.2f}x")
    print(f"one-row upsert + commit: median {mine['upsert_secs'] * 1000:.1f} ms "
          f"(max {mine['upsert_max'] * 1000:.1f} ms; target <= 10), {size(mine['upsert_bytes'])} added "
          f"(target <= 64 KiB); 1,000 rows appended: {size(mine['append_bytes'])} added (target <= 100 KiB)")
    print(f"one-row delete + commit: median {mine['delete_secs'] * 1000:.1f} ms, {size(mine['delete_bytes'])} added")

    # One table: each step of every tool in this run, beside the floor.
    labels = [p["label"] for p in peers.values()]
    steps = [
        ("import (Arrow in, in process)", f"{pwrite:.2f} s write, {pflushed:.2f} s flushed",
         [f"{p['import_secs']:.2f} s" for p in peers.values()], f"{imported:.2f} s",
         f"{imported / pwrite:.2f}x", imported / pwrite <= 1.2, "<= 1.2x"),
        ("read the first version into Arrow", f"{py['secs']:.2f} s",
         [f"{p['first']['secs']:.2f} s" for p in peers.values()], f"{first['secs']:.2f} s",
         f"{ratio(first):.2f}x", ratio(first) <= 1.0, "<= 1.0x"),
        ("read the newest version into Arrow", f"{py['secs']:.2f} s",
         [f"{p['newest']['secs']:.2f} s" for p in peers.values()], f"{newest['secs']:.2f} s",
         f"{ratio(newest):.2f}x", ratio(newest) <= 1.0, "<= 1.0x"),
        ("peak memory of the newest read", f"{py['peak_mib']:.0f} MiB",
         [f"{p['newest']['peak_mib']:.0f} MiB" for p in peers.values()], f"{newest['peak_mib']:.0f} MiB",
         f"{newest['peak_mib'] / newest['arrow_mib']:.2f}x Arrow",
         newest["peak_mib"] / newest["arrow_mib"] <= 1.3, "<= 1.3x Arrow"),
        ("one-row upsert + commit", "-", [f"{p['upsert_secs'] * 1000:.0f} ms" for p in peers.values()],
         f"{mine['upsert_secs'] * 1000:.0f} ms", "", mine["upsert_secs"] <= 0.010, "<= 10 ms"),
        ("bytes added by a one-row upsert", "-", [size(p["upsert_bytes"]) for p in peers.values()],
         size(mine["upsert_bytes"]), "", mine["upsert_bytes"] <= 64 * 1024, "<= 64 KiB"),
        ("bytes added by appending 1,000 rows", "-", [size(p["append_bytes"]) for p in peers.values()],
         size(mine["append_bytes"]), "", mine["append_bytes"] <= 100 * 1024, "<= 100 KiB"),
        ("one-row delete + commit", "-", [f"{p['delete_secs'] * 1000:.0f} ms" for p in peers.values()],
         f"{mine['delete_secs'] * 1000:.0f} ms", "", None, ""),
        ("bytes added by a one-row delete", "-", [size(p["delete_bytes"]) for p in peers.values()],
         size(mine["delete_bytes"]), "", None, ""),
        ("diff of 1 upsert + 1,000 appends", "-", ["-" for _ in peers], f"{diff_secs * 1000:.0f} ms", "", None, ""),
    ]
    print(f"\n== {n} rows, every tool in this run (medians; reads in fresh processes, three rounds)")
    print("| step | pyarrow floor | " + "".join(f"{label} | " for label in labels) + "Strata | Strata / floor | target | met |")
    print("|---|---|" + "---|" * len(labels) + "---|---|---|---|")
    for step, floor, others, mine_, vs, met, target in steps:
        verdict = "" if met is None else ("yes" if met else "no")
        print(f"| {step} | {floor} | " + "".join(f"{o} | " for o in others) + f"{mine_} | {vs} | {target} | {verdict} |")
    if not peers:
        print("(delta-rs and Lance are left out: pip install deltalake pylance, as bench/run.sh does)")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
