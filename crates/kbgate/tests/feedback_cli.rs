//! `kbgate feedback export` (issue #14, "Feedback"): the votes readers left, as CSV, filtered
//! by time and domain.

use std::path::Path;
use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use kbgate_store::FeedbackRecord;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbgate"))
        .current_dir(dir)
        .args(args)
        .env_remove("KBGATE_CONFIG")
        .env_remove("KBGATE_LOG_FORMAT")
        .env("KBGATE_LOG", "warn")
        .output()
        .expect("run kbgate")
}

fn rows(out: &Output) -> Vec<Vec<String>> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "time",
            "page_id",
            "space_key",
            "page_title",
            "helpful",
            "comment",
            "domain",
            "email",
            "voter"
        ]
    );
    r.records()
        .map(|row| row.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn export_writes_csv_filtered_by_time_and_domain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kbgate.toml"),
        r#"
[store]
url = "sqlite://kb.db"
data_dir = "data"

[[audience]]
name = "acme"
domains = ["acme.com", "globex.com"]
spaces = ["KB"]
"#,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(kbgate_store::open(
            "sqlite://kb.db",
            &dir.path().join("data"),
        ))
        .unwrap();
    let vote = |page: &str, voter: &str, domain: &str, helpful: bool, day: u32| FeedbackRecord {
        page_id: page.into(),
        voter: voter.into(),
        space_key: "KB".into(),
        page_title: format!("Title, of \"{page}\""),
        domain: domain.into(),
        email: None,
        helpful,
        comment: (!helpful).then(|| "Missing a step\nand a screenshot".to_owned()),
        at: Utc.with_ymd_and_hms(2026, 9, day, 12, 0, 0).unwrap(),
    };
    for v in [
        vote("1", "a", "acme.com", true, 1),
        vote("2", "b", "globex.com", false, 2),
        vote("3", "c", "acme.com", false, 3),
    ] {
        rt.block_on(store.put_feedback(&v)).unwrap();
    }
    drop(store);

    let all = rows(&run(dir.path(), &["feedback", "export", "--format", "csv"]));
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[1],
        [
            "2026-09-02T12:00:00.000Z",
            "2",
            "KB",
            "Title, of \"2\"",
            "no",
            "Missing a step\nand a screenshot",
            "globex.com",
            "",
            "b"
        ]
    );
    let since = rows(&run(
        dir.path(),
        &[
            "feedback",
            "export",
            "--format",
            "csv",
            "--since",
            "2026-09-02",
        ],
    ));
    assert_eq!(
        since.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["2", "3"]
    );
    let acme = rows(&run(
        dir.path(),
        &[
            "feedback", "export", "--format", "csv", "--domain", "ACME.com",
        ],
    ));
    assert_eq!(
        acme.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["1", "3"]
    );
    let both = rows(&run(
        dir.path(),
        &[
            "feedback",
            "export",
            "--since",
            "2026-09-01T13:00:00Z",
            "--domain",
            "acme.com",
        ],
    ));
    assert_eq!(
        both.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["3"]
    );

    // A bad --since is refused with a message, exit status 2 (usage).
    let out = run(dir.path(), &["feedback", "export", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
