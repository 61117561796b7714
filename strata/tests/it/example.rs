//! The tour in strata/examples/tour.rs, run as a test so that the example keeps working.

// The example's `main` is not called here.
#[allow(dead_code)]
#[path = "../../examples/tour.rs"]
mod tour;

#[tokio::test]
async fn the_tour_writes_commits_reads_back_an_older_revision_scans_a_range_and_pushes() {
    let dir = tempfile::tempdir().expect("a temporary folder should be creatable");
    let tour = tour::run(dir.path()).await.expect("the tour should run");

    assert_ne!(tour.commits[0], tour.commits[1]);
    assert_eq!(tour.rows, 5);
    assert_eq!((tour.oslo_before, tour.oslo_now), (709_037, 717_710));
    assert_eq!(tour.range_columns, ["city", "population"]);
    assert_eq!(
        tour.range_rows,
        [
            ("berlin".to_string(), 3_755_251),
            ("lisbon".to_string(), 545_796)
        ]
    );
    assert_eq!(
        tour.remote_branches,
        [("main".to_string(), tour.commits[1])]
    );

    // The repository the tour left behind agrees, seen through a new handle.
    let repo = strata::Repository::open(dir.path().join("repo"))
        .await
        .expect("the tour's repository opens");
    let log = repo.log(None, None).await.expect("the log is readable");
    let ids: Vec<_> = log.iter().map(|c| c.id).collect();
    assert_eq!(ids, [tour.commits[1], tour.commits[0]]);
    assert_eq!(log[0].message, "Oslo grew");
    assert_eq!(log[0].author, "Tour Guide <guide@example.com>");
    let upstream = repo
        .status()
        .await
        .expect("status")
        .upstream
        .expect("the push set the upstream");
    assert_eq!(
        (upstream.name.as_str(), upstream.ahead, upstream.behind),
        ("origin/main", Some(0), Some(0))
    );
}
