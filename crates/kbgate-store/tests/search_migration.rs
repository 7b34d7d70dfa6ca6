//! Mirrors written before scope tokens existed (SQLite mirror migrations up to 0002,
//! PostgreSQL up to 0001) are migrated: their pages are searchable with exact scopes.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use kbgate_store::*;
use sqlx::Connection;

/// Rows as the old schema stored them: two spaces, labels (also in `page_labels`), one
/// restricted page. `$now` is a timestamp literal of the backend.
fn old_rows(now: &str) -> Vec<String> {
    let page = |id: &str, space: &str, title: &str, labels: &str, restricted: bool| {
        format!(
            "INSERT INTO pages (id, space_id, title, version, created_at, updated_at, labels, \
             restricted, effective_restricted, body_text) VALUES ('{id}', '{space}', '{title}', \
             1, {now}, {now}, '{labels}', {restricted}, {restricted}, 'kiwi everywhere')"
        )
    };
    vec![
        "INSERT INTO spaces (id, key, name) VALUES ('S1', 'KB', 'KB'), ('S2', 'OT', 'OT')".into(),
        page("1", "S1", "Home", "[]", false),
        page("2", "S1", "Questions", r#"["faq","zz"]"#, false),
        page("3", "S1", "Secret", r#"["faq"]"#, true),
        page("4", "S2", "Elsewhere", r#"["faq"]"#, false),
        "INSERT INTO page_labels (page_id, label) VALUES ('2', 'faq'), ('2', 'zz'), \
         ('3', 'faq'), ('4', 'faq')"
            .into(),
    ]
}

async fn hit_ids(store: &dyn Store, q: &str, scope: &[ScopeEntry]) -> Vec<String> {
    let mut ids: Vec<String> = store
        .search(q, scope, 50, 0)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.page_id)
        .collect();
    ids.sort();
    ids
}

async fn check(store: &dyn Store) {
    let whole = |s: &str| ScopeEntry {
        space_id: s.into(),
        labels: None,
    };
    let faq = |s: &str| ScopeEntry {
        space_id: s.into(),
        labels: Some(vec!["faq".into()]),
    };
    assert_eq!(hit_ids(store, "kiwi", &[whole("S1")]).await, ["1", "2"]);
    assert_eq!(hit_ids(store, "kiwi", &[faq("S1")]).await, ["2"]);
    assert_eq!(hit_ids(store, "kiwi", &[faq("S2")]).await, ["4"]);
    assert!(
        hit_ids(store, "secret", &[whole("S1"), faq("S1")])
            .await
            .is_empty()
    );
    // A page written after the migration is found too, and the old ones still are.
    let space = SpaceRecord {
        id: "S1".into(),
        key: "KB".into(),
        name: "KB".into(),
        homepage_id: None,
        ..Default::default()
    };
    let mut sync = store
        .begin_space_sync(&space, SyncMode::Incremental)
        .await
        .unwrap();
    sync.upsert_page(PageRecord {
        id: "5".into(),
        space_id: "S1".into(),
        parent_id: None,
        position: 0,
        title: "New".into(),
        version: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        labels: vec!["faq".into()],
        restricted: false,
        effective_restricted: false,
        body_storage: String::new(),
        body_html: String::new(),
        body_text: "kiwi again".into(),
        headings: vec![],
    })
    .await
    .unwrap();
    sync.commit(SyncState {
        space_key: "KB".into(),
        space_id: "S1".into(),
        watermark: None,
        last_full_sync: None,
        last_sync: None,
    })
    .await
    .unwrap();
    assert_eq!(hit_ids(store, "kiwi", &[faq("S1")]).await, ["2", "5"]);
    assert_eq!(
        hit_ids(store, "kiwi", &[whole("S1")]).await,
        ["1", "2", "5"]
    );
}

#[tokio::test]
async fn sqlite_mirror_without_scope_tokens_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("kbgate.db"))
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::migrate!("migrations/sqlite/mirror")
        .run_to(2, &mut conn)
        .await
        .unwrap();
    for sql in old_rows("'2026-01-01T00:00:00Z'") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let store = kbgate_store::open("sqlite://kbgate.db", dir.path())
        .await
        .unwrap();
    check(&*store).await;
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    for t in ["pages_fts", "pages_title_fts"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {t}({t}, rank) VALUES ('integrity-check', 1)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // The migration wrote the same tokens the store writes.
    let tokens: String = sqlx::query_scalar("SELECT scope_tokens FROM pages WHERE id = '2'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        tokens,
        "\u{E000}s53310 \u{E000}l5331x6661710 \u{E000}l5331x7A7A0"
    );
}

#[tokio::test]
async fn postgres_mirror_without_scope_tokens_is_migrated() {
    let admin_url = testing::postgres_url();
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::PgConnection::connect(&admin_url),
    );
    let mut admin = match connect.await {
        Ok(Ok(c)) => c,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL unreachable and CI=true")
        }
        _ => {
            eprintln!("SKIPPED: PostgreSQL unreachable");
            return;
        }
    };
    let db = format!("kbgate_mig_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&db);
    let url = url.to_string();
    let result = AssertUnwindSafe(migrate_postgres(url)).catch_unwind().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn migrate_postgres(url: String) {
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::migrate!("migrations/postgres")
        .run_to(1, &mut conn)
        .await
        .unwrap();
    for sql in old_rows("now()") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(&url, dir.path()).await.unwrap();
    check(&store).await;
    let tokens: String = sqlx::query_scalar("SELECT scope_tokens FROM pages WHERE id = '2'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        tokens,
        "\u{E000}s53310 \u{E000}l5331x6661710 \u{E000}l5331x7A7A0"
    );
    conn.close().await.unwrap();
    store.close().await;
}
