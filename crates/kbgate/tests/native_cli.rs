//! Native mode through the binary, as an operator uses it: `people import|list`, `plan`
//! (`--detailed-exitcode`, `--output json`) and `apply` (`--dry-run`), against an in-process
//! simulator.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use confluence_sim::{SimConfig, SimHandle, spawn};

fn kbgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbgate"))
        .current_dir(dir)
        .args(["--config", "kbgate.toml"])
        .args(args)
        .env_remove("KBGATE_CONFIG")
        .env("KBGATE_LOG", "warn")
        .output()
        .expect("run kbgate")
}

/// Runs kbgate off the async runtime (the simulator lives on it).
async fn run(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        kbgate(&dir, &refs)
    })
    .await
    .expect("join")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A group audience (invitations, then memberships) and an unlicensed one (site users with no
/// product access, unlicensed view on KB).
const POLICY: &str = r#"
[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB"]
delivery = "group"

[[audience]]
name = "initech"
domains = ["initech.io"]
spaces = ["KB"]
delivery = "unlicensed"
"#;

const STORE: &str = "[store]\nurl = \"sqlite://kb.db\"\ndata_dir = \"data\"\n";

/// A config without `[confluence]` (people commands need only the store).
fn offline_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kbgate.toml"), format!("{STORE}\n{POLICY}")).expect("config");
    dir
}

/// A config pointing at the simulator with `token` as the API token.
fn sim_dir(h: &SimHandle, token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), token).expect("token");
    std::fs::write(
        dir.path().join("kbgate.toml"),
        format!(
            "[confluence]\nbase_url = \"{}\"\nemail = \"{}\"\napi_token_file = \"token\"\n\n{STORE}\n{POLICY}",
            h.base_url(),
            h.service_account().email
        ),
    )
    .expect("config");
    dir
}

fn write_csv(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("csv");
    p
}

/// Everything native mode could change in the simulator, in a comparable form.
fn sim_state(h: &SimHandle) -> String {
    h.state().read(|s| {
        let users: BTreeSet<String> = s
            .users
            .values()
            .map(|u| format!("{}:{:?}", u.email, u.kind))
            .collect();
        let groups: BTreeSet<String> = s
            .groups
            .values()
            .map(|g| format!("{}:{}", g.name, g.members.len()))
            .collect();
        let perms: BTreeSet<String> = s
            .space_permissions
            .values()
            .map(|p| format!("{}:{:?}:{}", p.space_key, p.subject, p.operation.key))
            .collect();
        format!(
            "users={users:?}\ngroups={groups:?}\nperms={perms:?}\nunlicensed={:?}\nglobal={}\ninvites={}",
            s.unlicensed_view,
            s.global_unlicensed_access,
            s.pending_invites.len()
        )
    })
}

#[test]
fn people_import_reports_bad_rows_with_line_numbers_and_keeps_the_good_ones() {
    let dir = offline_dir();
    let csv = write_csv(
        dir.path(),
        "people.csv",
        "name,Email,company\n\
         Ann,ann@acme.com,Acme\n\
         Bad,not-an-email,X\n\
         \"Smith, Bob\",bob@initech.io,Initech\n\
         Empty,,X\n\
         Again,ann@acme.com,Acme\n\
         Evil,a@evil.com@acme.com,X\n\
         \n\
         Zed,zed@other.org,Other\n\
         Open,\"unterminated,X\n",
    );
    let o = kbgate(dir.path(), &["people", "import", csv.to_str().unwrap()]);
    let t = text(&o);
    // Rejected rows make the command fail (scripts notice), naming them; the good rows are
    // kept all the same (checked with `people list` below).
    assert_eq!(o.status.code(), Some(1), "rows were rejected: {t}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4 row(s)")
            && String::from_utf8_lossy(&o.stderr).contains("lines: 3, 5, 7, 10"),
        "{t}"
    );
    assert!(
        t.contains("3 added, 1 already known, 1 outside every native audience today, 4 bad row(s)"),
        "{t}"
    );
    for line in [3, 5, 7, 10] {
        assert!(t.contains(&format!("line {line}:")), "line {line}: {t}");
    }
    for line in [2, 4, 6, 8, 9] {
        assert!(!t.contains(&format!("line {line}:")), "line {line}: {t}");
    }
    assert!(t.contains("not-an-email"), "names the bad value: {t}");

    let o = kbgate(dir.path(), &["people", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed: BTreeSet<String> = stdout(&o)
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = ["ann@acme.com", "bob@initech.io", "zed@other.org"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listed, expected, "{}", stdout(&o));
    assert!(
        stdout(&o)
            .lines()
            .all(|l| l.split('\t').nth(1) == Some("import")),
        "the source is shown: {}",
        stdout(&o)
    );

    // Importing again adds nobody.
    let o = kbgate(dir.path(), &["people", "import", csv.to_str().unwrap()]);
    assert!(
        text(&o).contains("0 added, 4 already known"),
        "{}",
        text(&o)
    );

    // A quoted field spanning lines is one field: nobody is dropped, and a clean file exits 0.
    let multi = write_csv(
        dir.path(),
        "multi.csv",
        "name,email,notes\n\
         \"Quinn\nthe second\",quinn@acme.com,\"two\nlines\"\n\
         Rey,rey@acme.com,x\n",
    );
    let o = kbgate(dir.path(), &["people", "import", multi.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(
            "2 added, 0 already known, 0 outside every native audience today, 0 bad row(s)"
        ),
        "{}",
        text(&o)
    );
    let o = kbgate(dir.path(), &["people", "list"]);
    assert!(stdout(&o).contains("quinn@acme.com\t"), "{}", stdout(&o));
    assert!(stdout(&o).contains("rey@acme.com\t"), "{}", stdout(&o));

    // A quote never closed would swallow every later row: that row is rejected (exit 1)
    // instead, and the rows before it are kept.
    let open = write_csv(
        dir.path(),
        "open.csv",
        "email,company\nsam@acme.com,Acme\ntom@acme.com,\"Acme\numa@acme.com,X\n",
    );
    let o = kbgate(dir.path(), &["people", "import", open.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("line 3: a quoted field is never closed"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("1 added"), "{}", text(&o));

    // A file kbgate cannot use at all is an error (exit 1) that says why.
    let no_column = write_csv(dir.path(), "nocol.csv", "name,mail\nAnn,ann@acme.com\n");
    let o = kbgate(
        dir.path(),
        &["people", "import", no_column.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("`email` column"), "{}", text(&o));
    let o = kbgate(dir.path(), &["people", "import", "missing.csv"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("missing.csv"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_dry_run_and_apply_against_the_simulator() {
    let h = spawn(SimConfig::default()).await.expect("sim");
    let dir = sim_dir(&h, &h.service_account().api_token);
    let people = ["cli.ann@acme.com", "cli.bob@acme.com", "cli.cy@initech.io"];
    let csv = write_csv(
        dir.path(),
        "people.csv",
        &format!("email\n{}\n", people.join("\n")),
    );
    let o = run(dir.path(), &["people", "import", csv.to_str().unwrap()]).await;
    assert!(text(&o).contains("3 added"), "{}", text(&o));

    // plan: changes → exit 2 with --detailed-exitcode, 0 without; the text groups them.
    let before = sim_state(&h);
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for s in [
        "audience acme:",
        "audience initech:",
        "+ invite ×2",
        "+ create-site-user ×1",
        "cli.cy@initech.io",
        "Plan: ",
    ] {
        assert!(t.contains(s), "{s:?} in {t}");
    }
    let o = run(dir.path(), &["plan"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // plan --output json: parses, and has the actions with their kinds and reasons.
    let o = run(dir.path(), &["plan", "--output", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON plan");
    let actions = v["actions"].as_array().expect("actions");
    let kinds: BTreeSet<&str> = actions.iter().filter_map(|a| a["kind"].as_str()).collect();
    let expected: BTreeSet<&str> = [
        "create-group",
        "grant-group-read",
        "invite",
        "set-unlicensed-view",
        "set-global-unlicensed-access",
        "create-site-user",
    ]
    .into();
    assert_eq!(kinds, expected, "{v:#}");
    assert!(
        actions.iter().all(|a| {
            a["id"].is_string() && a["audience"].is_string() && a["reason"].is_string()
        })
    );
    assert_eq!(v["summary"]["changes"], actions.len());
    let invited: BTreeSet<&str> = actions
        .iter()
        .filter(|a| a["kind"] == "invite")
        .filter_map(|a| a["email"].as_str())
        .collect();
    assert_eq!(invited, ["cli.ann@acme.com", "cli.bob@acme.com"].into());

    // apply --dry-run is the plan: it prints it, and writes nothing to Confluence.
    h.reset_stats();
    let o = run(dir.path(), &["apply", "--dry-run"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("+ invite ×2"), "{t}");
    assert_eq!(sim_state(&h), before, "--dry-run changed the site");
    let writes: Vec<String> = h
        .stats()
        .by_endpoint
        .into_keys()
        .filter(|e| {
            e.starts_with("DELETE")
                || (e.starts_with("POST")
                    && !e.contains("check-access-by-email")
                    && !e.contains("users-bulk"))
        })
        .collect();
    assert!(writes.is_empty(), "--dry-run sent writes: {writes:?}");
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    assert_eq!(o.status.code(), Some(2), "still to do: {}", text(&o));

    // apply: invitations, the group and its permission, the site user, the switches. With
    // `--wait 0` it does not wait for the invitations: the invitees are listed as waiting (not
    // granted) and apply exits 4.
    let o = run(dir.path(), &["apply", "--wait", "0"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("apply: 7 done, 0 skipped, 0 failed"), "{t}");
    assert!(
        t.contains("waiting cli.ann@acme.com: invited in this run"),
        "{t}"
    );
    // Invitations are on their way: nothing to do now (and nobody invited twice) until they
    // land, but not converged either: exit 4, and the plan names who waits.
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("WAITING [acme] 2 person(s) invited"), "{t}");
    let o = run(dir.path(), &["apply", "--wait", "nonsense"]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses a bad duration: {}",
        text(&o)
    );
    h.state().advance_clock(chrono::Duration::seconds(5));
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("+ add-group-member ×2"), "{t}");
    let o = run(dir.path(), &["apply"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("apply: 2 done, 0 skipped, 0 failed"), "{t}");

    // Converged: nothing left, exit 0, and apply has nothing to do.
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("No changes"), "{t}");
    let o = run(dir.path(), &["apply"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("Nothing to do"), "{}", text(&o));

    // The site shows exactly the intended access.
    h.state().read(|s| {
        let g = s
            .groups
            .values()
            .find(|g| g.name == "kbgate-acme")
            .expect("group");
        let members: BTreeSet<&str> = g
            .members
            .iter()
            .filter_map(|id| s.users.get(id))
            .map(|u| u.email.as_str())
            .collect();
        assert_eq!(members, ["cli.ann@acme.com", "cli.bob@acme.com"].into());
        let group_perms: Vec<(&str, &str, &str)> = s
            .space_permissions
            .values()
            .filter(|p| p.subject == confluence_sim::model::Subject::Group(g.id.clone()))
            .map(|p| {
                (
                    p.space_key.as_str(),
                    p.operation.key.as_str(),
                    p.operation.target.as_str(),
                )
            })
            .collect();
        assert_eq!(group_perms, vec![("KB", "read", "space")]);
        assert_eq!(
            s.user_by_email("cli.cy@initech.io").map(|u| u.kind),
            Some(confluence_sim::model::UserKind::Unlicensed)
        );
        assert!(s.unlicensed_view.contains("KB") && s.global_unlicensed_access);
        assert!(s.anonymous_view.is_empty());
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_with_a_wrong_token_exits_1_and_names_the_fix() {
    let h = spawn(SimConfig::default()).await.expect("sim");
    let dir = sim_dir(&h, "wrong-token-value");
    let csv = write_csv(dir.path(), "people.csv", "email\ncli.ann@acme.com\n");
    let o = run(dir.path(), &["people", "import", csv.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = sim_state(&h);
    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["plan", "--output", "json"],
        &["apply"],
    ] {
        let o = run(dir.path(), args).await;
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains("401") && t.contains("API token"),
            "{args:?}: {t}"
        );
        assert!(!t.contains("wrong-token-value"), "token echoed: {t}");
    }
    assert_eq!(sim_state(&h), before);
}

/// A guest audience over the guest allowance (issue 16): the plan says so before anything is
/// applied; apply provisions what fits and exits 3 ("partly applied, limits reached"), not 1;
/// afterwards plan --detailed-exitcode exits 3 (nothing that fits is left, people wait) and
/// apply exits 3 again without changing anything.
#[tokio::test(flavor = "multi_thread")]
async fn guests_over_the_allowance_are_planned_and_applied_up_to_it() {
    let h = spawn(SimConfig::default()).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), h.service_account().api_token).expect("token");
    // One paid user (the operator's number): room for 5 guests.
    std::fs::write(
        dir.path().join("kbgate.toml"),
        format!(
            "[confluence]\nbase_url = \"{}\"\nemail = \"{}\"\napi_token_file = \"token\"\n\
             licensed_users = 1\n\n{STORE}\n[[audience]]\nname = \"globex\"\n\
             domains = [\"globex.co.uk\"]\nspaces = [\"KB\"]\ndelivery = \"guest\"\n",
            h.base_url(),
            h.service_account().email
        ),
    )
    .expect("config");
    let people: Vec<String> = (0..8).map(|i| format!("cap{i}@globex.co.uk")).collect();
    let csv = write_csv(
        dir.path(),
        "people.csv",
        &format!("email\n{}\n", people.join("\n")),
    );
    let o = run(dir.path(), &["people", "import", csv.to_str().unwrap()]).await;
    assert!(text(&o).contains("8 added"), "{}", text(&o));

    let before = sim_state(&h);
    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "changes that fit: {t}");
    assert!(
        t.contains("LIMIT [globex] guest limit reached: 5 of 8 new guest(s) fit"),
        "{t}"
    );
    assert!(
        t.contains("cap5@globex.co.uk, cap6@globex.co.uk, cap7@globex.co.uk"),
        "{t}"
    );
    assert!(t.contains("paid users") && t.contains("portal"), "{t}");
    assert!(t.contains("+ assign-guest-space ×5"), "{t}");
    let o = run(dir.path(), &["plan", "--output", "json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["summary"]["waiting_on_limits"], 3);
    assert_eq!(v["limits"][0]["waiting"][0], "cap5@globex.co.uk");
    assert_eq!(sim_state(&h), before, "plan writes nothing");

    let o = run(dir.path(), &["apply"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "partly applied: {t}");
    assert!(t.contains("0 failed, 3 waiting on a site limit"), "{t}");
    assert!(!t.contains("give the service account"), "{t}");
    let guests = h.state().read(|s| {
        s.users
            .values()
            .filter(|u| {
                u.kind == confluence_sim::model::UserKind::Guest && u.email.starts_with("cap")
            })
            .count()
    });
    assert_eq!(guests, 5);

    let o = run(dir.path(), &["plan", "--detailed-exitcode"]).await;
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("No changes that fit"), "{t}");
    let after = sim_state(&h);
    let o = run(dir.path(), &["apply"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(sim_state(&h), after);
}

/// `--help` documents the exit codes of plan and apply.
#[test]
fn help_documents_the_exit_codes() {
    let dir = offline_dir();
    let o = kbgate(dir.path(), &["apply", "--help"]);
    let t = text(&o);
    assert!(t.contains("3 partly applied"), "{t}");
    assert!(
        t.contains("4 applied, but people wait on an invitation"),
        "{t}"
    );
    assert!(t.contains("--wait <DURATION>"), "{t}");
    let o = kbgate(dir.path(), &["plan", "--help"]);
    let t = text(&o);
    assert!(
        t.contains("3 nothing") || t.contains("3 when nothing"),
        "{t}"
    );
    assert!(t.contains("4 nothing to apply now"), "{t}");
    assert!(t.contains("4 when nothing is to be applied now"), "{t}");
}
