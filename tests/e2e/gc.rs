//! `strata gc`, locally and on remotes: what an abandoned branch leaves is removed and
//! everything still reachable (branches, tags, remote-tracking refs, working tables, a merge in
//! progress) is kept; a remote collection racing with pushers loses no acknowledged commit (on
//! a folder and on radosgw); a lock left by another repository blocks collections and pushes
//! with advice until broken; bad invocations change nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backends::Backend;
use crate::harness::*;
use crate::remote::{
    arg, clone_on, commit_rows, history, items_csv, published_on, pushed_items, remote_branches_on,
    SplitMix, ITEMS_HEADER,
};

/// The keys of an `items` export.
#[track_caller]
fn item_keys(csv: &str) -> BTreeSet<i64> {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(ITEMS_HEADER),
        "unexpected export:\n{csv}"
    );
    lines
        .map(|l| {
            l.split(',')
                .next()
                .and_then(|k| k.parse().ok())
                .unwrap_or_else(|| panic!("unexpected export line {l:?}"))
        })
        .collect()
}

/// The commit of `origin/main` as `remote show origin --json` reads it from the remote now.
#[track_caller]
fn remote_main(backend: Backend, dir: &Dir) -> String {
    remote_branches_on(backend, dir)
        .remove("main")
        .expect("the remote has a main branch")
}

/// Runs `strata` in `dir`, reaching `backend`, with extra environment variables.
fn run_with_env<S: AsRef<OsStr>>(
    backend: Backend,
    dir: &Dir,
    args: &[S],
    env: &[(&str, &str)],
) -> Output {
    let shown: Vec<String> = args.iter().map(|a| format!("{:?}", a.as_ref())).collect();
    let mut cmd = backend.command(dir, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the strata binary should start");
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Output::of(format!("{} strata {}", env.join(" "), shown.join(" ")), out)
}

/// A number in a `gc --json` report, e.g. `count(&report, &["removed", "objects"])`.
#[track_caller]
fn count(report: &serde_json::Value, path: &[&str]) -> u64 {
    let mut v = report;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count in the gc report {report}"))
}

// ---------------------------------------------------------------------------------------------
// A remote collection racing with pushers, on a folder and on radosgw

#[test]
fn gc_racing_pushes_keeps_every_acknowledged_commit_on_a_folder() {
    gc_racing_pushes::<60>(Backend::File);
}

#[test]
fn gc_racing_pushes_keeps_every_acknowledged_commit_on_radosgw() {
    // Fewer rounds than on a folder: each costs a few times more on the server, and the
    // folder run already covers the interleavings in number.
    gc_racing_pushes::<24>(Backend::Radosgw);
}

/// What one pusher did.
#[derive(Default)]
struct Pushed {
    /// Every commit whose push was acknowledged (exit status 0), with the key it added.
    acknowledged: Vec<(String, i64)>,
    rejections: usize,
    /// The commit of each throwaway branch, by branch.
    throwaway_commits: Vec<(String, String)>,
    /// The objects each throwaway commit added (its commit, table, index nodes and chunks).
    throwaway_objects: BTreeMap<String, String>,
    /// What failed, if something did (the pusher stopped there).
    failure: Option<String>,
}

/// Runs a command that must succeed; otherwise says what happened (for a pusher's report).
fn must(what: &str, out: Output) -> Result<Output, String> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed:\n{out:?}"))
    }
}

/// Pushes the current branch to its upstream; a rejected push is followed by a pull and
/// another push (at most 200 times). Any other failure is returned. Counts rejections into
/// `pushed`.
fn push_until_accepted(backend: Backend, dir: &Dir, pushed: &mut Pushed) -> Result<(), String> {
    const TRIES: usize = 200;
    for _ in 0..TRIES {
        let out = backend.run(dir, &["push"]);
        if out.status.success() {
            return Ok(());
        }
        if !out.stderr.contains("rejected") {
            return Err(format!("a push failed other than by a rejection:\n{out:?}"));
        }
        pushed.rejections += 1;
        must("a pull after a rejected push", backend.run(dir, &["pull"]))?;
    }
    Err(format!("the push was rejected {TRIES} times in a row"))
}

/// A push of `args` that must succeed.
fn push_must(what: &str, backend: Backend, dir: &Dir, args: &[&str]) -> Result<(), String> {
    must(what, backend.run(dir, args)).map(|_| ())
}

/// One pusher: until `stop`, commits a row with a unique key and pushes it (pulling when
/// rejected); every third round also pushes a throwaway branch and deletes it on the remote,
/// which leaves its objects as garbage.
fn pusher(backend: Backend, dir: &Dir, p: i64, stop: &AtomicBool) -> Pushed {
    let mut pushed = Pushed::default();
    if let Err(e) = push_rows(backend, dir, p, stop, &mut pushed) {
        pushed.failure = Some(format!("pusher {p}: {e}"));
        stop.store(true, Ordering::SeqCst);
    }
    pushed
}

/// The loop of [`pusher`].
fn push_rows(
    backend: Backend,
    dir: &Dir,
    p: i64,
    stop: &AtomicBool,
    pushed: &mut Pushed,
) -> Result<(), String> {
    let owner = format!("p{p}");
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let key = p * 100_000 + i;
        dir.write("change.csv", items_csv(&[(key, &owner, i)]));
        must(
            "an upsert",
            dir.strata(&["import", "items", "change.csv", "--mode", "upsert"]),
        )?;
        must(
            "a commit",
            dir.strata(&["commit", "-m", &format!("pusher {p} row {i}")]),
        )?;
        push_until_accepted(backend, dir, pushed)?;
        let head = must("log", dir.strata(&["log", "--json", "-n", "1"]))?;
        let id = head.json_lines()[0]["id"]
            .as_str()
            .expect("a commit id is a string")
            .to_string();
        pushed.acknowledged.push((id, key));

        if i % 3 == 2 {
            let branch = format!("tmp-{p}-{i}");
            must("checkout -b", dir.strata(&["checkout", "-b", &branch]))?;
            let before = stored_ids(dir);
            dir.write("junk.csv", items_csv(&[(-key - 1, "junk", i)]));
            must(
                "an upsert on a throwaway branch",
                dir.strata(&["import", "items", "junk.csv", "--mode", "upsert"]),
            )?;
            must(
                "a commit on a throwaway branch",
                dir.strata(&["commit", "-m", "junk"]),
            )?;
            let junk = must("log", dir.strata(&["log", "--json", "-n", "1"]))?;
            let junk = junk.json_lines()[0]["id"]
                .as_str()
                .expect("a commit id is a string")
                .to_string();
            pushed.throwaway_commits.push((branch.clone(), junk));
            for id in stored_ids(dir).difference(&before) {
                pushed.throwaway_objects.insert(id.clone(), branch.clone());
            }
            push_must(
                "pushing a throwaway branch",
                backend,
                dir,
                &["push", "origin", &branch],
            )?;
            push_must(
                "deleting a throwaway branch on the remote",
                backend,
                dir,
                &["push", "origin", "--delete", &branch],
            )?;
            must("checkout main", dir.strata(&["checkout", "main"]))?;
            must("branch -d", dir.strata(&["branch", "-D", &branch]))?;
        }
        i += 1;
    }
    Ok(())
}

/// Totals of the collection rounds.
#[derive(Default)]
struct Collected {
    removed: u64,
    fenced: u64,
    leases: u64,
}

/// Three pushers (with throwaway branches) race a fourth clone that collects the remote
/// `ROUNDS` times; no acknowledged commit may be lost, and the remote stays complete.
fn gc_racing_pushes<const ROUNDS: usize>(backend: Backend) {
    const PUSHERS: i64 = 3;
    let started = Instant::now();
    let remote = backend.remote("gc-racing-pushes");
    let url = &remote.url;
    let _seed = published_on(backend, url);
    let clones: Vec<Dir> = (0..PUSHERS).map(|_| clone_on(backend, url)).collect();
    let collector = clone_on(backend, url);
    let stop = AtomicBool::new(false);

    let (collected, pushers) = std::thread::scope(|s| {
        let stop = &stop;
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(p, dir)| s.spawn(move || pusher(backend, dir, p as i64 + 1, stop)))
            .collect();
        let collector = &collector;
        let gc = s.spawn(move || {
            let mut totals = Collected::default();
            let mut result = Ok(());
            for round in 0..ROUNDS {
                if stop.load(Ordering::SeqCst) {
                    result = Err(format!("a pusher failed; gc stopped after {round} rounds"));
                    break;
                }
                // Some rounds follow each other at once, others after a pause in which pushes
                // get through: 0 to 450 ms, varying from round to round.
                std::thread::sleep(Duration::from_millis((round as u64 * 7 % 10) * 50));
                // Half the rounds fence pushes in flight at once; the others first give them
                // the default grace to finish.
                let grace = if round % 2 == 0 { "0" } else { "2" };
                let out = run_with_env(
                    backend,
                    collector,
                    &["gc", "--remote", "origin", "--json"],
                    &[("STRATA_GC_GRACE", grace)],
                );
                if !out.status.success() {
                    result = Err(format!("gc round {round} failed:\n{out:?}"));
                    break;
                }
                let report = out.json();
                totals.removed += count(&report, &["removed", "objects"]);
                totals.fenced += count(&report, &["fenced"]);
                totals.leases += count(&report, &["leases"]);
            }
            stop.store(true, Ordering::SeqCst);
            result.map(|()| totals)
        });
        let pushers: Vec<Pushed> = handles
            .into_iter()
            .map(|h| h.join().expect("a pusher thread panicked"))
            .collect();
        let collected = gc.join().expect("the gc thread panicked");
        (collected, pushers)
    });
    let racing = started.elapsed();

    let failures: Vec<&String> = pushers.iter().filter_map(|p| p.failure.as_ref()).collect();
    if !failures.is_empty() {
        panic!(
            "pushers failed while gc ran on {}:\n{}\n{}",
            backend.name(),
            failures
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            diagnose(backend, url, &collector, &pushers, &failures)
        );
    }
    let collected = collected.unwrap_or_else(|e| panic!("on {}: {e}", backend.name()));
    let acknowledged: Vec<&(String, i64)> = pushers.iter().flat_map(|p| &p.acknowledged).collect();
    let rejections: usize = pushers.iter().map(|p| p.rejections).sum();
    let throwaway: usize = pushers.iter().map(|p| p.throwaway_commits.len()).sum();
    assert!(
        !acknowledged.is_empty(),
        "no push was acknowledged while gc ran"
    );

    // The remote is complete, and a fresh clone has every acknowledged commit and row.
    let out = backend
        .run(&collector, &["fsck", "--remote", "origin"])
        .ok();
    assert_mentions(&out.stdout, &["no problems"]);
    let fresh = clone_on(backend, url);
    let out = fresh.strata(&["fsck"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    let ids: BTreeSet<String> = history(&fresh, None).into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged pushes missing from the remote's main on {} after gc: {lost:?}",
        backend.name()
    );
    let keys = item_keys(&fresh.export_csv("items", None));
    let missing: Vec<i64> = acknowledged
        .iter()
        .map(|(_, k)| *k)
        .filter(|k| !keys.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged rows missing from the remote's main on {}: {missing:?}",
        backend.name()
    );
    assert!(
        keys.iter().all(|k| *k > 0),
        "a throwaway branch's row reached main on {}: {keys:?}",
        backend.name()
    );

    // One more collection leaves nothing to collect.
    backend.run(&collector, &["gc", "--remote", "origin"]).ok();
    let out = backend
        .run(
            &collector,
            &["gc", "--remote", "origin", "--dry-run", "--json"],
        )
        .ok();
    let report = out.json();
    assert_eq!(report["dry_run"], true, "{out:?}");
    assert_eq!(
        count(&report, &["removed", "objects"]),
        0,
        "a collection after the last one still finds garbage:\n{out:?}"
    );
    assert!(
        collected.removed > 0,
        "{ROUNDS} collections on {} removed nothing ({throwaway} throwaway branches, \
         {rejections} rejected pushes)",
        backend.name()
    );
    println!(
        "gc racing pushes on {}: {ROUNDS} collections removed {} objects, fenced {} ref records \
         ({} leases seen); {} pushes acknowledged, {rejections} rejected, \
         {throwaway} throwaway branches; \
         {racing:?} racing, {:?} in all",
        backend.name(),
        collected.removed,
        collected.fenced,
        collected.leases,
        acknowledged.len(),
        started.elapsed()
    );
}

/// What can be told about failed pushers: for each missing object, whether the remote's
/// main reaches it now (a fresh clone holds it) or which throwaway branch it belonged to, and
/// whether the remote is complete now.
fn diagnose(
    backend: Backend,
    url: &str,
    collector: &Dir,
    pushers: &[Pushed],
    failures: &[&String],
) -> String {
    let mut notes = Vec::new();
    let fresh = Dir::empty();
    let cloned = backend.run(&fresh, &["clone", url, arg(fresh.path())]);
    let reachable = cloned.status.success().then(|| stored_ids(&fresh));
    if reachable.is_none() {
        notes.push(format!("a fresh clone failed: {cloned:?}"));
    }
    for f in failures {
        for (at, _) in f.match_indices(" is missing") {
            let Some(id) = f[..at].rsplit(' ').next() else {
                continue;
            };
            let throwaway = pushers.iter().find_map(|p| p.throwaway_objects.get(id));
            let mut note = match throwaway {
                Some(branch) => format!(
                    "the missing object {id} was written for the throwaway branch {branch} \
                     (deleted on the remote)"
                ),
                None => format!("the missing object {id} is not one of a throwaway branch"),
            };
            if let Some(ids) = &reachable {
                if ids.contains(id) {
                    note.push_str("; the remote's main reaches it now (a fresh clone has it)");
                } else {
                    note.push_str("; the remote's main does not reach it (a fresh clone lacks it)");
                }
            }
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let fsck = backend.run(collector, &["fsck", "--remote", "origin"]);
    notes.push(format!(
        "the remote now, once every pusher stopped: {fsck:?}"
    ));
    notes.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Collections killed at random moments, locally and on a remote

#[test]
fn killing_gc_processes_at_random_moments_leaves_the_repository_and_a_folder_remote_consistent() {
    killing_gc_at_random_moments(Backend::File, 9);
}

#[test]
fn killing_gc_processes_at_random_moments_leaves_the_repository_and_a_radosgw_remote_consistent() {
    killing_gc_at_random_moments(Backend::Radosgw, 4);
}

/// Starts `strata ARGS` in `dir` and kills it after `ms` milliseconds; returns whether it had
/// already finished successfully by then.
fn run_killed_after(backend: Backend, dir: &Dir, args: &[&str], ms: u64) -> bool {
    let mut child = backend
        .command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strata should start");
    std::thread::sleep(Duration::from_millis(ms));
    // A process that has exited is not reaped until `wait`, so this kill is harmless then.
    child.kill().expect("the collection should be killable");
    child
        .wait()
        .expect("the killed collection should be reaped")
        .success()
}

/// How a killed collection fell: before it deleted anything, part-way, or after its sweep.
#[derive(Default, Debug)]
struct Kills {
    before: u64,
    during: u64,
    after: u64,
}

impl Kills {
    fn count(&mut self, garbage_before: u64, garbage_left: u64) {
        match garbage_left {
            0 => self.after += 1,
            n if n == garbage_before => self.before += 1,
            _ => self.during += 1,
        }
    }
}

/// A window for the next kill, in milliseconds: a kill that came after the collection had
/// finished shrinks it, one that came earlier widens it, so that kills keep falling before,
/// during and after the sweep whatever the machine's speed.
fn next_window(window_ms: u64, finished: bool) -> u64 {
    if finished {
        (window_ms * 3 / 4).max(10)
    } else {
        (window_ms * 5 / 4).min(3000)
    }
}

/// `rounds` times: a throwaway branch that changes rows in every chunk of a 100,000-row table
/// is pushed, then deleted here and on the remote, which leaves its objects as garbage in
/// both places, while `main` moves on by a pushed commit. Then a local `gc` and a
/// `gc --remote` are each killed at a random moment. After each kill the repository (or the
/// remote) passes fsck, `main` reads exactly as committed (a fresh clone too), and gc run again
/// from the same repository completes and leaves nothing to collect.
fn killing_gc_at_random_moments(backend: Backend, rounds: u64) {
    const ROWS: i64 = 100_000;
    // Rows a throwaway branch changes: enough to touch every chunk of 512 rows (on average),
    // so that each collection deletes a few hundred objects.
    const CHANGED: i64 = 600;
    let started = Instant::now();
    let remote = backend.remote("killed-gc");
    let url = &remote.url;
    let local = pushed_items(backend, url, ROWS, 512);

    let make_garbage = |round: u64, offset: i64| {
        let branch = format!("junk{round}");
        local.strata(&["checkout", "-b", &branch]).ok();
        let rows: Vec<(i64, &str, i64)> = (0..CHANGED)
            .map(|j| ((j * (ROWS / CHANGED) + offset) % ROWS, "junk", round as i64))
            .collect();
        commit_rows(&local, &rows, "junk");
        backend.run(&local, &["push", "origin", &branch]).ok();
        backend
            .run(&local, &["push", "origin", "--delete", &branch])
            .ok();
        local.strata(&["checkout", "main"]).ok();
        local.strata(&["branch", "-D", &branch]).ok();
    };
    let garbage = |args: &[&str]| -> u64 {
        let mut all = vec!["gc", "--dry-run", "--json"];
        all.extend_from_slice(args);
        let out = backend.run(&local, &all).ok();
        count(&out.json(), &["removed", "objects"])
    };

    // One whole collection of each kind is timed; the kills fall within twice that.
    make_garbage(rounds, 0);
    let timed = Instant::now();
    local.strata(&["gc"]).ok();
    let mut local_window = (2 * timed.elapsed().as_millis() as u64).clamp(10, 3000);
    let timed = Instant::now();
    backend.run(&local, &["gc", "--remote", "origin"]).ok();
    let mut remote_window = (2 * timed.elapsed().as_millis() as u64).clamp(10, 3000);

    let (mut local_kills, mut remote_kills) = (Kills::default(), Kills::default());
    for round in 0..rounds {
        let mut rng = SplitMix(0x6C00_0000 + round);
        make_garbage(round, (rng.next() % CHANGED as u64) as i64);
        let tip = commit_rows(
            &local,
            &[(round as i64, "kept", round as i64)],
            &format!("kept {round}"),
        );
        backend.run(&local, &["push"]).ok();
        let rows = local.export_csv("items", None);

        // A local collection, killed.
        let before = garbage(&[]);
        assert!(before > 0, "round {round}: no local garbage to collect");
        let finished = run_killed_after(backend, &local, &["gc"], rng.next() % local_window);
        local_kills.count(before, garbage(&[]));
        local_window = next_window(local_window, finished);
        let out = local.strata(&["fsck"]).ok();
        assert_mentions(&out.stdout, &["no problems"]);
        assert_eq!(local.rev_id("main"), tip, "round {round}");
        assert_eq!(local.export_csv("items", None), rows, "round {round}");
        local.strata(&["gc"]).ok();
        assert_eq!(garbage(&[]), 0, "round {round}: gc run again left garbage");

        // A remote collection, killed (it may leave its lock behind).
        let on_remote = ["--remote", "origin"];
        let before = garbage(&on_remote);
        assert!(before > 0, "round {round}: no garbage on the remote");
        let finished = run_killed_after(
            backend,
            &local,
            &["gc", "--remote", "origin"],
            rng.next() % remote_window,
        );
        remote_kills.count(before, garbage(&on_remote));
        remote_window = next_window(remote_window, finished);
        let out = backend.run(&local, &["fsck", "--remote", "origin"]).ok();
        assert_mentions(&out.stdout, &["no problems"]);
        let fresh = clone_on(backend, url);
        assert_eq!(
            fresh.rev_id("HEAD"),
            tip,
            "round {round} on {}",
            backend.name()
        );
        assert_eq!(
            fresh.export_csv("items", None),
            rows,
            "round {round} on {}: a clone after a killed collection",
            backend.name()
        );
        // Run again from the same repository, it takes over its own lock and finishes.
        backend.run(&local, &["gc", "--remote", "origin"]).ok();
        assert_eq!(
            garbage(&on_remote),
            0,
            "round {round} on {}: gc run again left garbage",
            backend.name()
        );
    }

    // Pushes go through afterwards, and the remote is whole.
    let tip = commit_rows(&local, &[(-1, "last", 0)], "last");
    backend.run(&local, &["push"]).ok();
    let out = backend.run(&local, &["fsck", "--remote", "origin"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    let fresh = clone_on(backend, url);
    assert_eq!(fresh.rev_id("HEAD"), tip);
    assert_eq!(
        fresh.export_csv("items", None),
        local.export_csv("items", None)
    );
    println!(
        "killed collections on {}: local {local_kills:?} (last window {local_window} ms), \
         remote {remote_kills:?} (last window {remote_window} ms); {:?} in all",
        backend.name(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Local collection

/// Upserts the rows of `csv` into `people` (a working change).
fn upsert_people(dir: &Dir, csv: &str) {
    dir.write("change.csv", csv);
    dir.strata(&["import", "people", "change.csv", "--mode", "upsert"])
        .ok();
}

/// The ids of the objects (metadata and chunks) a repository stores.
fn stored_ids(dir: &Dir) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for top in ["objects", "chunks"] {
        let Ok(folders) = std::fs::read_dir(dir.join(".strata").join(top)) else {
            continue;
        };
        for folder in folders {
            let folder = folder.expect("a folder entry should be readable").path();
            for file in std::fs::read_dir(&folder).expect("an object folder should be readable") {
                let file = file.expect("a folder entry should be readable").path();
                ids.insert(object_id_of(&file));
            }
        }
    }
    ids
}

#[test]
fn gc_removes_an_abandoned_branch_and_keeps_everything_still_reachable() {
    let dir = Dir::with_people();
    let hub = Dir::empty();
    let remote = hub.join("hub");

    // A tag on a commit no branch reaches any more.
    dir.strata(&["checkout", "-b", "old"]).ok();
    upsert_people(&dir, "id,name,score\n10,tagged,10.0\n");
    dir.strata(&["commit", "-m", "tagged"]).ok();
    dir.strata(&["tag", "v1"]).ok();
    let tagged = dir.rev_id("v1");
    let tagged_csv = dir.export_csv("people", Some("v1"));
    dir.strata(&["checkout", "main"]).ok();
    dir.strata(&["branch", "-D", "old"]).ok();

    // A branch that is abandoned: nothing reaches its commit.
    dir.strata(&["checkout", "-b", "abandoned"]).ok();
    upsert_people(&dir, "id,name,score\n20,abandoned,20.0\n");
    dir.strata(&["commit", "-m", "abandoned"]).ok();
    let abandoned = dir.rev_id("HEAD");
    dir.strata(&["checkout", "main"]).ok();
    dir.strata(&["branch", "-D", "abandoned"]).ok();

    // Two more commits on main, pushed; main then goes back one, so that the last one is
    // reached by origin/main alone.
    upsert_people(&dir, "id,name,score\n30,kept,30.0\n");
    dir.strata(&["commit", "-m", "kept"]).ok();
    upsert_people(&dir, "id,name,score\n40,pushed,40.0\n");
    dir.strata(&["commit", "-m", "pushed"]).ok();
    let pushed = dir.rev_id("HEAD");
    let pushed_csv = dir.export_csv("people", Some("HEAD"));
    dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    dir.strata(&["push", "--create", "-u", "origin", "main"])
        .ok();
    dir.strata(&["reset", "--hard", "HEAD~1"]).ok();
    assert_eq!(dir.rev_id("origin/main"), pushed);
    let main = dir.rev_id("main");
    let main_csv = dir.export_csv("people", Some("main"));

    // Uncommitted work: a changed table and a new one.
    upsert_people(&dir, "id,name,score\n50,working,50.0\n");
    dir.write("cities.csv", "city,pop\noslo,1\nrome,2\n");
    dir.strata(&["import", "cities", "cities.csv", "--primary-key", "city"])
        .ok();
    let working_people = dir.export_csv("people", None);
    let working_cities = dir.export_csv("cities", None);
    assert!(working_people.contains("50,working,50.0"));

    let ids = stored_ids(&dir);
    assert!(ids.contains(&abandoned), "the abandoned commit is stored");

    // A dry run reports garbage and changes no object.
    let objects = dir.snapshot().only(&["objects", "chunks"]);
    let out = dir.strata(&["gc", "--dry-run", "--json"]).ok();
    let dry = out.json();
    assert_eq!(dry["dry_run"], true, "{out:?}");
    let would = count(&dry, &["removed", "objects"]);
    assert!(would > 0, "the dry run found nothing to remove:\n{out:?}");
    assert!(count(&dry, &["removed", "bytes"]) > 0, "{out:?}");
    objects.assert_same(&dir.snapshot().only(&["objects", "chunks"]), "gc --dry-run");
    let text = dir.strata(&["gc", "--dry-run"]).ok();
    assert_mentions(
        &text.stdout,
        &[&format!("Would remove {would} objects"), "kept"],
    );

    // The collection removes exactly that.
    let out = dir.strata(&["gc", "--json"]).ok();
    let report = out.json();
    assert_eq!(report["dry_run"], false, "{out:?}");
    assert_eq!(count(&report, &["removed", "objects"]), would, "{out:?}");
    assert_eq!(report["kept"], dry["kept"], "{out:?}");
    let after = stored_ids(&dir);
    assert_eq!(
        ids.len() - after.len(),
        would as usize,
        "objects stored before and after"
    );
    assert!(
        !after.contains(&abandoned),
        "the abandoned commit is still stored"
    );
    assert!(after.contains(&tagged) && after.contains(&pushed) && after.contains(&main));

    // Everything still reachable reads as before.
    let out = dir.strata(&["fsck"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    assert_eq!(dir.export_csv("people", Some("v1")), tagged_csv);
    assert_eq!(dir.export_csv("people", Some("origin/main")), pushed_csv);
    assert_eq!(dir.export_csv("people", Some("main")), main_csv);
    assert_eq!(dir.export_csv("people", None), working_people);
    assert_eq!(dir.export_csv("cities", None), working_cities);
    dir.strata(&["log", "-n", "1", &abandoned]).fails();
    dir.strata(&["commit", "-m", "after gc"]).ok();
    assert_eq!(dir.export_csv("cities", Some("HEAD")), working_cities);

    // A second collection finds nothing.
    let out = dir.strata(&["gc", "--json"]).ok();
    assert_eq!(count(&out.json(), &["removed", "objects"]), 0, "{out:?}");
    let out = dir.strata(&["gc"]).ok();
    assert_mentions(&out.stdout, &["Removed 0 objects", "kept"]);
}

/// A branch whose only change deletes one row, abandoned. The delete is stored as a delta of
/// no rows that lists the row's key, and the branch's Iceberg view reads it through a
/// position-delete file and a delete manifest. gc removes the delta with the view's files
/// made for it, and `main`, which never had the delete, reads and checks as before.
#[test]
fn gc_removes_an_abandoned_deleting_delta_with_its_position_deletes() {
    let dir = Dir::repo();
    let mut csv = String::from("id,name\n");
    for i in 0..2000 {
        csv.push_str(&format!("{i},item {i}\n"));
    }
    dir.write("items.csv", &csv);
    dir.strata(&["import", "items", "items.csv", "--primary-key", "id"])
        .ok();
    dir.strata(&["commit", "-m", "items"]).ok();
    let main_csv = dir.export_csv("items", Some("main"));
    let chunks = dir.chunk_files();
    let deletes = |dir: &Dir| {
        let files = dir.snapshot();
        let mut found = files.files_under("iceberg/deletes");
        found.extend(files.files_under("iceberg/delete-manifests"));
        found
    };
    assert_eq!(deletes(&dir), Vec::<PathBuf>::new(), "main deletes nothing");

    dir.strata(&["checkout", "-b", "drop"]).ok();
    dir.write("gone.csv", "id\n9\n");
    dir.strata(&["delete", "items", "--keys", "gone.csv"]).ok();
    dir.strata(&["commit", "-m", "one row less"]).ok();
    let added: Vec<PathBuf> = dir
        .chunk_files()
        .into_iter()
        .filter(|p| !chunks.contains(p))
        .collect();
    let [delta] = &added[..] else {
        panic!("one new file, the delta: {added:?}");
    };
    let delta_id = object_id_of(delta);
    let files = deletes(&dir);
    assert_eq!(
        files.len(),
        2,
        "a position-delete file and its manifest: {files:?}"
    );
    let position = files
        .iter()
        .find(|p| p.starts_with("iceberg/deletes"))
        .expect("a position-delete file");
    let name = position.to_string_lossy().replace('/', "");
    assert!(
        name.contains(&delta_id),
        "the position-delete file {position:?} is named by the delta {delta_id}"
    );
    assert!(!dir.export_csv("items", None).contains("\n9,"));

    dir.strata(&["checkout", "main"]).ok();
    dir.strata(&["branch", "-D", "drop"]).ok();
    let out = dir.strata(&["gc", "--json"]).ok();
    assert!(count(&out.json(), &["removed", "objects"]) > 0, "{out:?}");
    assert!(!delta.exists(), "the abandoned delta is still stored");
    assert_eq!(
        deletes(&dir),
        Vec::<PathBuf>::new(),
        "its view files are still stored"
    );
    assert!(chunks.iter().all(|p| p.exists()), "main's chunks are kept");
    let out = dir.strata(&["fsck"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    assert_eq!(dir.export_csv("items", Some("main")), main_csv);
}

#[test]
fn gc_during_a_merge_with_conflicts_keeps_the_merge_resolvable() {
    let dir = Dir::with_people();
    // Their side: a commit that only the merge will reach (its branch is deleted).
    dir.strata(&["checkout", "-b", "feature"]).ok();
    upsert_people(&dir, "id,name,score\n2,robert,7.5\n4,dee,4.0\n");
    dir.strata(&["commit", "-m", "their change"]).ok();
    let theirs = dir.rev_id("HEAD");
    dir.strata(&["checkout", "main"]).ok();
    dir.strata(&["branch", "-D", "feature"]).ok();
    // Garbage, so that the collection has something to remove.
    dir.strata(&["checkout", "-b", "abandoned"]).ok();
    upsert_people(&dir, "id,name,score\n9,gone,9.0\n");
    dir.strata(&["commit", "-m", "abandoned"]).ok();
    dir.strata(&["checkout", "main"]).ok();
    dir.strata(&["branch", "-D", "abandoned"]).ok();
    // Our side.
    upsert_people(&dir, "id,name,score\n2,bob,8.5\n5,eve,5.0\n");
    dir.strata(&["commit", "-m", "our change"]).ok();
    let ours = dir.rev_id("HEAD");

    let line = dir.strata(&["merge", &theirs]).fails_with_one_line();
    assert_mentions(&line, &["conflict"]);
    let conflicts = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");

    let out = dir.strata(&["gc", "--json"]).ok();
    assert!(
        count(&out.json(), &["removed", "objects"]) > 0,
        "gc removed nothing:\n{out:?}"
    );
    let out = dir.strata(&["fsck"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    let after = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(after, conflicts, "gc changed the conflicts");

    dir.strata(&["conflicts", "resolve", "--theirs"]).ok();
    dir.strata(&["commit", "-m", "merged"]).ok();
    let merged = dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    assert_eq!(
        merged[0]["parents"],
        serde_json::json!([ours, theirs]),
        "{merged:?}"
    );
    assert_eq!(
        dir.export_csv("people", Some("HEAD")),
        "id,name,score\n1,ann,1.5\n2,robert,7.5\n3,cy,3.0\n4,dee,4.0\n5,eve,5.0\n"
    );
    let out = dir.strata(&["fsck"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    let out = dir.strata(&["status", "--json"]).ok();
    assert_eq!(out.json()["merging"], serde_json::Value::Null, "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// The remote lock, and refusals

#[test]
fn a_remote_gc_lock_left_by_another_repository_blocks_gc_and_push_with_advice_until_broken() {
    let backend = Backend::File;
    let remote = backend.remote("gc-lock");
    let folder = remote.folder.clone().expect("a folder remote");
    let dir = published_on(backend, &remote.url);
    let published = dir.rev_id("HEAD");
    let lock = folder.join("gc/lock/00000000000000000001");
    std::fs::create_dir_all(folder.join("gc/lock")).expect("the remote's gc folder");
    std::fs::write(
        &lock,
        r#"{"format":1,"id":"dead-gc","writer":"someone-else","time":1764070000,"held":true}"#,
    )
    .expect("the fake lock should be writable");
    let refs = Snapshot::of(&folder.join("refs"));
    let objects = Snapshot::of(&folder.join("objects"));

    let line = backend
        .run(&dir, &["gc", "--remote", "origin"])
        .fails_with_one_line();
    assert_mentions(&line, &["dead-gc", "--break-lock"]);
    assert!(lock.exists(), "a refused gc removed the lock");
    refs.assert_same(&Snapshot::of(&folder.join("refs")), "a refused gc");
    objects.assert_same(&Snapshot::of(&folder.join("objects")), "a refused gc");

    dir.write("change.csv", items_csv(&[(4, "new", 4)]));
    dir.strata(&["import", "items", "change.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "after the lock"]).ok();
    let head = dir.rev_id("HEAD");
    let started = Instant::now();
    let line =
        run_with_env(backend, &dir, &["push"], &[("STRATA_GC_WAIT", "1")]).fails_with_one_line();
    let waited = started.elapsed();
    assert_mentions(&line, &["garbage collection", "dead-gc"]);
    assert!(
        waited >= Duration::from_secs(1),
        "the push gave up after {waited:?}, before STRATA_GC_WAIT=1 was over"
    );
    assert_eq!(remote_main(backend, &dir), published, "the push moved main");
    refs.assert_same(&Snapshot::of(&folder.join("refs")), "a push blocked by gc");
    assert_eq!(dir.rev_id("origin/main"), published);

    let out = backend
        .run(
            &dir,
            &["gc", "--remote", "origin", "--break-lock", "--json"],
        )
        .ok();
    assert_eq!(out.json()["took_over"], "dead-gc", "{out:?}");
    assert!(!lock.exists(), "the broken lock is still there");

    backend.run(&dir, &["push"]).ok();
    assert_eq!(remote_main(backend, &dir), head);
    assert!(!lock.exists(), "a lock appeared after the push");
    let out = backend.run(&dir, &["fsck", "--remote", "origin"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
}

#[test]
fn gc_with_an_unknown_remote_or_bad_flags_fails_with_one_line_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["gc", "--remote", "nope"]);
    assert_mentions(&line, &["nope"]);
    let line = dir.refused(&["gc", "--remote", "nope", "--dry-run"]);
    assert_mentions(&line, &["nope"]);

    let before = dir.snapshot();
    let err = dir.strata(&["gc", "--break-lock"]).usage_error();
    assert_mentions(&err, &["--break-lock", "--remote"]);
    dir.strata(&["gc", "--break-lock", "--dry-run"])
        .usage_error();
    before.assert_same(&dir.snapshot(), "gc --break-lock without --remote");
}
