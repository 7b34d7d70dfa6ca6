//! Black-box tests of paging, retries, throttling, bulk caps and errors against tiny in-test
//! axum servers that answer Confluence-shaped JSON.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use confluence_client::*;
use futures::TryStreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;

const TOKEN: &str = "tok-SUPER-SECRET-123";

async fn serve(app: Router) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}").parse().unwrap()
}

fn config(base: url::Url) -> ClientConfig {
    let mut cfg = ClientConfig::new(base, "svc@example.com", TOKEN);
    cfg.requests_per_second = 0;
    cfg.retry = RetryConfig {
        max_retries: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        ..RetryConfig::default()
    };
    cfg.timeout = Duration::from_secs(10);
    cfg
}

fn client(base: url::Url) -> Client {
    Client::new(config(base)).unwrap()
}

fn q_usize(q: &HashMap<String, String>, k: &str) -> Option<usize> {
    q.get(k).and_then(|v| v.parse().ok())
}

/// Records every request's query for server-side assertions.
#[derive(Default)]
struct Log {
    queries: Mutex<Vec<HashMap<String, String>>>,
    bodies: Mutex<Vec<Value>>,
    arrivals: Mutex<Vec<(String, Instant)>>,
    hits: AtomicUsize,
}

// ------------------------------------------------------------------ paging

#[tokio::test]
async fn v2_paging_follows_link_header_and_links_next_across_more_than_250_items() {
    const N: usize = 610;
    let log = Arc::new(Log::default());
    // spaces: cursor only in the Link header; pages: cursor only in _links.next.
    async fn list(
        log: &Log,
        q: HashMap<String, String>,
        path: &str,
        header_cursor: bool,
    ) -> Response {
        let limit = q_usize(&q, "limit").unwrap_or(25);
        assert!(limit <= 250, "limit {limit} above the v2 cap");
        let start = q_usize(&q, "cursor").unwrap_or(0);
        log.queries.lock().unwrap().push(q.clone());
        let end = (start + limit).min(N);
        let results: Vec<Value> = (start..end)
            .map(|i| json!({"id": i.to_string(), "key": format!("K{i}"), "title": format!("P{i}"), "status": "current"}))
            .collect();
        let mut body = json!({"results": results, "_links": {"base": "http://ignored/wiki"}});
        let mut headers = HeaderMap::new();
        if end < N {
            let next = format!("/wiki/api/v2/{path}?cursor={end}&limit={limit}");
            if header_cursor {
                headers.insert(
                    header::LINK,
                    format!("<{next}>; rel=\"next\", <http://ignored/wiki>; rel=\"base\"")
                        .parse()
                        .unwrap(),
                );
            } else {
                body["_links"]["next"] = json!(next);
            }
        }
        (headers, Json(body)).into_response()
    }
    let app = Router::new()
        .route(
            "/wiki/api/v2/spaces",
            get(
                |State(log): State<Arc<Log>>, Query(q): Query<HashMap<String, String>>| async move {
                    list(&log, q, "spaces", true).await
                },
            ),
        )
        .route(
            "/wiki/api/v2/spaces/{id}/pages",
            get(
                |State(log): State<Arc<Log>>, Query(q): Query<HashMap<String, String>>| async move {
                    list(&log, q, "spaces/7/pages", false).await
                },
            ),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);

    let spaces: Vec<Space> = c.spaces(&[]).try_collect().await.unwrap();
    assert_eq!(spaces.len(), N);
    assert!(
        spaces
            .iter()
            .enumerate()
            .all(|(i, s)| s.id == i.to_string())
    );
    assert_eq!(c.stats().calls("GET /wiki/api/v2/spaces"), 3);

    let pages: Vec<Page> = c
        .space_pages("7", PageListOptions::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), N);
    assert!(
        pages
            .iter()
            .enumerate()
            .all(|(i, p)| p.title == format!("P{i}"))
    );
    assert_eq!(c.stats().calls("GET /wiki/api/v2/spaces/{id}/pages"), 3);
    let qs = log.queries.lock().unwrap();
    let first_pages = &qs[3];
    assert_eq!(
        first_pages.get("body-format").map(String::as_str),
        Some("storage")
    );
    assert_eq!(first_pages.get("limit").map(String::as_str), Some("250"));
}

#[tokio::test]
async fn streams_are_lazy() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/api/v2/pages/{id}/labels",
            get(|State(log): State<Arc<Log>>| async move {
                log.hits.fetch_add(1, Ordering::SeqCst);
                Json(json!({"results": [{"id": "1", "name": "a"}],
                            "_links": {"next": "/wiki/api/v2/pages/1/labels?cursor=x"}}))
            }),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let mut s = c.page_labels("1");
    let first = s.try_next().await.unwrap().unwrap();
    assert_eq!(first.name, "a");
    drop(s);
    assert_eq!(log.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn v1_group_members_page_by_start_and_limit() {
    const N: usize = 450;
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/rest/api/group/{id}/membersByGroupId",
            get(
                |State(log): State<Arc<Log>>,
                 Path(id): Path<String>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    assert_eq!(id, "g-1");
                    let limit = q_usize(&q, "limit").unwrap_or(200);
                    assert!(limit <= 200, "limit {limit} above the v1 cap");
                    assert_eq!(q.get("expand").map(String::as_str), Some("isExternalCollaborator"));
                    let start = q_usize(&q, "start").unwrap_or(0);
                    log.queries.lock().unwrap().push(q);
                    let end = (start + limit).min(N);
                    let results: Vec<Value> = (start..end)
                        .map(|i| json!({"type": "known", "accountId": format!("acc-{i}"), "isExternalCollaborator": i % 2 == 0}))
                        .collect();
                    // No _links: the client must page by start/size.
                    Json(json!({"results": results, "start": start, "limit": limit, "size": end - start}))
                },
            ),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let members: Vec<UserV1> = c.group_members("g-1").try_collect().await.unwrap();
    assert_eq!(members.len(), N);
    assert_eq!(members[449].account_id.as_deref(), Some("acc-449"));
    assert_eq!(members[2].is_guest(), Some(true));
    let starts: Vec<_> = log
        .queries
        .lock()
        .unwrap()
        .iter()
        .map(|q| q_usize(q, "start").unwrap())
        .collect();
    assert_eq!(starts, vec![0, 200, 400]);
}

#[tokio::test]
async fn v1_search_follows_links_next_relative_to_wiki_context() {
    const N: usize = 260;
    let app = Router::new().route(
        "/wiki/rest/api/content/search",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            assert_eq!(q.get("cql").map(String::as_str), Some("space = \"KB\" and type = page"));
            assert_eq!(
                q.get("expand").map(String::as_str),
                Some("ancestors,metadata.labels")
            );
            let start = q_usize(&q, "cursor").unwrap_or(0);
            let end = (start + 100).min(N);
            let results: Vec<Value> = (start..end)
                .map(|i| json!({"id": i.to_string(), "type": "page", "status": "current", "title": format!("T{i}"),
                                "metadata": {"labels": {"results": [{"prefix": "global", "name": "faq", "id": "9", "label": "faq"}], "size": 1}},
                                "ancestors": [{"id": "1", "type": "page", "status": "current"}]}))
                .collect();
            let mut links = json!({"base": "http://x/wiki", "context": "/wiki"});
            if end < N {
                // v1 writes next relative to the /wiki context and repeats the query.
                links["next"] = json!(format!(
                    "/rest/api/content/search?next=true&cursor={end}&limit=100&expand=ancestors,metadata.labels&cql=space+%3D+%22KB%22+and+type+%3D+page"
                ));
            }
            Json(json!({"results": results, "size": end - start, "start": 0, "limit": 100, "_links": links}))
        }),
    );
    let c = client(serve(app).await);
    let all: Vec<Content> = c
        .content_search(
            "space = \"KB\" and type = page",
            &["ancestors", "metadata.labels"],
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), N);
    assert_eq!(all[259].title, "T259");
    assert_eq!(all[0].label_names(), Some(vec!["faq"]));
    assert_eq!(all[0].ancestors.as_ref().unwrap()[0].id, "1");
    assert_eq!(c.stats().calls("GET /wiki/rest/api/content/search"), 3);
}

#[tokio::test]
async fn next_link_to_another_origin_is_refused() {
    let app = Router::new().route(
        "/wiki/api/v2/pages/{id}/attachments",
        get(|| async {
            Json(json!({"results": [{"id": "att1", "title": "a.png"}],
                        "_links": {"next": "https://evil.example/wiki/api/v2/pages/1/attachments?cursor=1"}}))
        }),
    );
    let c = client(serve(app).await);
    let r: Result<Vec<Attachment>> = c.page_attachments("1").try_collect().await;
    assert!(matches!(r, Err(Error::InvalidResponse { .. })), "{r:?}");
}

// ------------------------------------------------------------------ retries

#[tokio::test]
async fn storm_of_429_with_retry_after_is_waited_out() {
    // Every distinct call is refused twice with Retry-After: 1, then served.
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/api/v2/pages/{id}",
            get(
                |State(log): State<Arc<Log>>, Path(id): Path<String>| async move {
                    let n = {
                        let mut a = log.arrivals.lock().unwrap();
                        a.push((id.clone(), Instant::now()));
                        a.iter().filter(|(i, _)| *i == id).count()
                    };
                    if n <= 2 {
                        let mut h = HeaderMap::new();
                        h.insert(header::RETRY_AFTER, "1".parse().unwrap());
                        h.insert("X-RateLimit-Remaining", "0".parse().unwrap());
                        (StatusCode::TOO_MANY_REQUESTS, h, "Rate limit exceeded").into_response()
                    } else {
                        Json(json!({"id": id, "title": "ok"})).into_response()
                    }
                },
            ),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let ids: Vec<String> = (0..6).map(|i| i.to_string()).collect();
    let results = futures::future::join_all(ids.iter().map(|id| c.page(id, false))).await;
    for r in &results {
        assert_eq!(r.as_ref().unwrap().title, "ok");
    }
    let arrivals = log.arrivals.lock().unwrap();
    for id in &ids {
        let times: Vec<Instant> = arrivals
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(times.len(), 3);
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(990),
                "retry came {:?} after a Retry-After: 1",
                w[1] - w[0]
            );
        }
    }
    let s = c.stats();
    assert_eq!(s.rate_limited, 12);
    assert_eq!(s.retries, 12);
    assert_eq!(s.total, 18);
}

#[tokio::test]
async fn retries_stop_with_rate_limited_after_max_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/wiki/api/v2/spaces",
            get(|State(h): State<Arc<AtomicUsize>>| async move {
                h.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "0")],
                    "slow down",
                )
            }),
        )
        .with_state(hits.clone());
    let mut cfg = config(serve(app).await);
    cfg.retry.max_retries = 3;
    let c = Client::new(cfg).unwrap();
    let r: Result<Vec<Space>> = c.spaces(&["A"]).try_collect().await;
    match r {
        Err(Error::RateLimited { path, attempts }) => {
            assert_eq!(path, "/wiki/api/v2/spaces");
            assert_eq!(attempts, 4);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_not_for_writes() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/rest/api/content/{id}/restriction/byOperation/read",
            get(|State(log): State<Arc<Log>>| async move {
                if log.hits.fetch_add(1, Ordering::SeqCst) < 2 {
                    (StatusCode::BAD_GATEWAY, "bad gateway").into_response()
                } else {
                    Json(json!({"operation": "read", "restrictions": {
                        "user": {"results": [{"type": "known", "accountId": "a1"}], "size": 1},
                        "group": {"results": [], "size": 0}},
                        "_expandable": {}, "_links": {}}))
                    .into_response()
                }
            }),
        )
        .route(
            "/wiki/api/v2/user/access/invite-by-email",
            post(|State(log): State<Arc<Log>>, body: Bytes| async move {
                log.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"errors": [{"status": 500, "code": "INTERNAL", "title": "Internal Server Error", "detail": "boom"}]})))
            }),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let r = c.read_restrictions("42").await.unwrap();
    assert!(r.is_restricted());
    assert_eq!(c.stats().retries, 2);

    let e = c.invite_by_email(&["a@x.com"]).await.unwrap_err();
    assert!(matches!(e, Error::Server { status: 500, .. }), "{e:?}");
    assert!(e.to_string().contains("boom"), "{e}");
    assert_eq!(
        log.bodies.lock().unwrap().len(),
        1,
        "a write must not be repeated after a 500"
    );
}

#[tokio::test]
async fn writes_are_retried_when_refused_with_retry_after() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/rest/api/group/userByGroupId",
            post(
                |State(log): State<Arc<Log>>,
                 Query(q): Query<HashMap<String, String>>,
                 body: Bytes| async move {
                    log.queries.lock().unwrap().push(q);
                    log.bodies
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    if log.hits.fetch_add(1, Ordering::SeqCst) == 0 {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, "0")],
                            "",
                        )
                            .into_response()
                    } else {
                        StatusCode::CREATED.into_response()
                    }
                },
            ),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    c.add_group_member("g1", "acc-1").await.unwrap();
    let bodies = log.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1], json!({"accountId": "acc-1"}));
    assert_eq!(
        log.queries.lock().unwrap()[0]
            .get("groupId")
            .map(String::as_str),
        Some("g1")
    );
}

#[tokio::test]
async fn connection_refused_gives_transport_error_after_retries() {
    // Bind then drop to get a port nobody listens on.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut cfg = config(format!("http://{addr}").parse().unwrap());
    cfg.retry.max_retries = 2;
    let c = Client::new(cfg).unwrap();
    let e = c.page("1", false).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert_eq!(c.stats().total, 3);
}

// ------------------------------------------------------------------ throttle

#[tokio::test]
async fn client_side_throttle_spaces_requests() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/api/v2/pages/{id}",
            get(
                |State(log): State<Arc<Log>>, Path(id): Path<String>| async move {
                    log.arrivals
                        .lock()
                        .unwrap()
                        .push((id.clone(), Instant::now()));
                    Json(json!({"id": id}))
                },
            ),
        )
        .with_state(log.clone());
    let mut cfg = config(serve(app).await);
    cfg.requests_per_second = 40;
    let c = Client::new(cfg).unwrap();
    let ids: Vec<String> = (0..80).map(|i| i.to_string()).collect();
    futures::future::try_join_all(ids.iter().map(|id| c.page(id, false)))
        .await
        .unwrap();
    let arrivals = log.arrivals.lock().unwrap();
    let first = arrivals.iter().map(|a| a.1).min().unwrap();
    let last = arrivals.iter().map(|a| a.1).max().unwrap();
    // Burst of 40, then 40 more at 40/s: at least ~1 s between the first and the last.
    assert!(
        last - first >= Duration::from_millis(900),
        "{:?}",
        last - first
    );
}

// ------------------------------------------------------------------ bulk caps

#[tokio::test]
async fn bulk_calls_are_split_to_the_caps() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/api/v2/users-bulk",
            post(|State(log): State<Arc<Log>>, Json(b): Json<Value>| async move {
                let ids = b["accountIds"].as_array().unwrap().clone();
                assert!(!ids.is_empty() && ids.len() <= 250, "{} ids", ids.len());
                log.bodies.lock().unwrap().push(b.clone());
                let results: Vec<Value> = ids
                    .iter()
                    .map(|i| json!({"accountId": i, "email": format!("{}@x.com", i.as_str().unwrap()), "accountStatus": "active", "isExternalCollaborator": false, "accountType": "atlassian"}))
                    .collect();
                Json(json!({"results": results, "_links": {}}))
            }),
        )
        .route(
            "/wiki/api/v2/user/access/check-access-by-email",
            post(|State(log): State<Arc<Log>>, Json(b): Json<Value>| async move {
                let emails = b["emails"].as_array().unwrap().clone();
                assert!(!emails.is_empty() && emails.len() <= 100, "{} emails", emails.len());
                log.hits.fetch_add(1, Ordering::SeqCst);
                let without: Vec<&Value> = emails.iter().filter(|e| e.as_str().unwrap().starts_with("new")).collect();
                let invalid: Vec<&Value> = emails.iter().filter(|e| !e.as_str().unwrap().contains('@')).collect();
                Json(json!({"emailsWithoutAccess": without, "invalidEmails": invalid}))
            }),
        )
        .route(
            "/wiki/api/v2/user/access/invite-by-email",
            post(|State(log): State<Arc<Log>>, Json(b): Json<Value>| async move {
                let emails = b["emails"].as_array().unwrap().clone();
                assert!(!emails.is_empty() && emails.len() <= 100, "{} emails", emails.len());
                log.queries.lock().unwrap().push(HashMap::from([("n".to_string(), emails.len().to_string())]));
                StatusCode::OK
            }),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);

    let ids: Vec<String> = (0..600).map(|i| format!("acc{i}")).collect();
    let users = c.users_bulk(&ids).await.unwrap();
    assert_eq!(users.len(), 600);
    assert!(users.iter().all(User::is_active));
    let sizes: Vec<usize> = log
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["accountIds"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![250, 250, 100]);

    let mut emails: Vec<String> = (0..230).map(|i| format!("old{i}@x.com")).collect();
    emails.extend((0..20).map(|i| format!("new{i}@x.com")));
    emails.push("not-an-email".into());
    let r = c.check_access_by_email(&emails).await.unwrap();
    assert_eq!(log.hits.load(Ordering::SeqCst), 3);
    assert_eq!(r.emails_without_access.len(), 20);
    assert_eq!(r.invalid_emails, vec!["not-an-email".to_string()]);

    c.invite_by_email(&emails).await.unwrap();
    let n: Vec<String> = log
        .queries
        .lock()
        .unwrap()
        .iter()
        .map(|q| q["n"].clone())
        .collect();
    assert_eq!(n, vec!["100", "100", "51"]);
    // Nothing to send, nothing sent.
    let before = c.stats().total;
    c.invite_by_email::<&str>(&[]).await.unwrap();
    assert_eq!(c.stats().total, before);
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn wrong_token_gives_unauthorized_with_atlassian_message() {
    let app = Router::new()
        .route(
            "/wiki/api/v2/spaces",
            get(|| async {
                (StatusCode::UNAUTHORIZED, Json(json!({"errors": [{"status": 401, "code": "UNAUTHORIZED", "title": "Unauthorized", "detail": "Authentication credentials are incorrect"}]})))
            }),
        )
        .route(
            "/wiki/rest/api/group/by-name",
            get(|| async {
                (StatusCode::UNAUTHORIZED, Json(json!({"statusCode": 401, "message": "This request requires authentication", "data": {"authorized": false, "valid": true, "errors": [], "successful": false}})))
            }),
        );
    let c = client(serve(app).await);
    let r: Result<Vec<Space>> = c.spaces(&["KB"]).try_collect().await;
    let e = r.unwrap_err();
    match &e {
        Error::Unauthorized { path, message } => {
            assert_eq!(path, "/wiki/api/v2/spaces");
            assert!(
                message.contains("Authentication credentials are incorrect"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("API token"), "{e}");
    let e = c.group_by_name("staff").await.unwrap_err();
    assert!(
        matches!(&e, Error::Unauthorized { message, .. } if message.contains("requires authentication")),
        "{e:?}"
    );
    assert_eq!(c.stats().retries, 0, "401 is not retried");
}

#[tokio::test]
async fn status_codes_map_to_typed_errors_and_never_leak_the_token() {
    // The server echoes the Authorization header (and the raw token) into every error body:
    // the client must scrub it.
    async fn echo(status: StatusCode, headers: HeaderMap) -> Response {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            Json(json!({"statusCode": status.as_u16(), "message": format!("Permission already exists; you sent {auth} / {TOKEN}")})),
        )
            .into_response()
    }
    let app = Router::new()
        .route(
            "/wiki/rest/api/space/{key}/permission",
            post(|Path(key): Path<String>, h: HeaderMap| async move {
                let status = match key.as_str() {
                    "DUP" => StatusCode::BAD_REQUEST,
                    "FORB" => StatusCode::FORBIDDEN,
                    "GONE" => StatusCode::NOT_FOUND,
                    "ERR" => StatusCode::INTERNAL_SERVER_ERROR,
                    "OFF" => StatusCode::SERVICE_UNAVAILABLE,
                    "BUSY" => StatusCode::TOO_MANY_REQUESTS,
                    "AUTH" => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::CONFLICT,
                };
                echo(status, h).await
            }),
        )
        .route(
            "/wiki/rest/api/space/{key}/permission/{id}",
            axum::routing::delete(|| async { (StatusCode::BAD_REQUEST, "{not json") }),
        )
        .route("/wiki/api/v2/pages/{id}", get(|| async { "{not json" }));
    let mut cfg = config(serve(app).await);
    cfg.retry.max_retries = 1;
    let c = Client::new(cfg).unwrap();
    let subject = PermissionSubject::group("g-1");
    let op = SpaceOperation::read_space();
    let mut errors = Vec::new();
    for key in ["DUP", "FORB", "GONE", "ERR", "OFF", "BUSY", "AUTH", "CONF"] {
        errors.push(
            c.add_space_permission(key, &subject, &op)
                .await
                .unwrap_err(),
        );
    }
    assert!(
        matches!(errors[0], Error::AlreadyExists { .. }),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], Error::Forbidden { hint, .. } if hint.contains("space admin")),
        "{:?}",
        errors[1]
    );
    assert!(matches!(errors[2], Error::NotFound { .. }));
    assert!(matches!(errors[3], Error::Server { status: 500, .. }));
    assert!(matches!(errors[4], Error::ServiceUnavailable { .. }));
    assert!(matches!(errors[5], Error::RateLimited { attempts: 2, .. }));
    assert!(matches!(errors[6], Error::Unauthorized { .. }));
    assert!(matches!(errors[7], Error::AlreadyExists { .. }));
    errors.push(c.remove_space_permission("KB", "5").await.unwrap_err());
    assert!(matches!(errors[8], Error::BadRequest { status: 400, .. }));
    errors.push(c.page("1", false).await.unwrap_err());
    assert!(matches!(errors[9], Error::Decode { .. }));
    errors.push(Error::Transport {
        path: "/p".into(),
        message: "reset".into(),
    });
    errors.push(Error::InvalidResponse {
        path: "/p".into(),
        message: "x".into(),
    });
    errors.push(Error::Config("x".into()));

    let basic = base64_basic();
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
            assert!(!text.contains(TOKEN), "token leaked: {text}");
            assert!(!text.contains(&basic), "auth header leaked: {text}");
            assert!(
                text.contains('/') || matches!(e, Error::Config(_)),
                "no path in {text}"
            );
        }
    }
    // Neither the config nor the client print the token.
    let cfg = config("http://127.0.0.1:1".parse().unwrap());
    assert!(!format!("{cfg:?}").contains(TOKEN));
    assert!(!format!("{c:?}").contains(TOKEN));
}

fn base64_basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("svc@example.com:{TOKEN}"))
}

// ------------------------------------------------------------------ downloads, kb, graphql, jira

#[tokio::test]
async fn download_follows_the_redirect_and_streams() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let served = data.clone();
    let app = Router::new()
        .route(
            "/wiki/rest/api/content/{page}/child/attachment/{att}/download",
            get(|Path((page, att)): Path<(String, String)>| async move {
                (
                    StatusCode::FOUND,
                    [(
                        header::LOCATION,
                        format!("/files/{page}/{att}?token=short-lived"),
                    )],
                )
            }),
        )
        .route(
            "/files/{page}/{att}",
            get(move |h: HeaderMap| {
                let served = served.clone();
                async move {
                    assert!(
                        h.get(header::AUTHORIZATION).is_some(),
                        "same-origin redirect keeps auth"
                    );
                    ([(header::CONTENT_TYPE, "image/png")], served)
                }
            }),
        );
    let c = client(serve(app).await);
    let d = c.download_attachment("10", "att20").await.unwrap();
    assert_eq!(d.content_type.as_deref(), Some("image/png"));
    assert_eq!(d.content_length, Some(data.len() as u64));
    let chunks: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    assert!(chunks.len() > 1, "expected a streamed body");
    assert_eq!(chunks.concat(), data);
}

#[tokio::test]
async fn knowledge_base_switches_send_documented_bodies() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/rest/knowledge-base/1.0/permissions/{scope}/{what}",
            post(
                |State(log): State<Arc<Log>>,
                 Path((scope, what)): Path<(String, String)>,
                 Json(b): Json<Value>| async move {
                    log.bodies
                        .lock()
                        .unwrap()
                        .push(json!({"scope": scope, "what": what, "body": b}));
                    let mut answer = b.clone();
                    answer["someOtherField"] = json!(1);
                    Json(answer)
                },
            ),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let s = c.set_unlicensed_view("KB", true).await.unwrap();
    assert_eq!(s.state(), Some(true));
    assert_eq!(s.space_key.as_deref(), Some("KB"));
    assert_eq!(s.extra.get("someOtherField"), Some(&json!(1)));
    let s = c.set_anonymous_view("KB", false).await.unwrap();
    assert_eq!(s.state(), Some(false));
    c.set_global_unlicensed_access(true).await.unwrap();
    let bodies = log.bodies.lock().unwrap();
    assert_eq!(
        bodies[0],
        json!({"scope": "space", "what": "unlicensedview", "body": {"spaceKey": "KB", "enablePermission": true}})
    );
    assert_eq!(
        bodies[1],
        json!({"scope": "space", "what": "anonymousview", "body": {"spaceKey": "KB", "enablePermission": false}})
    );
    assert_eq!(
        bodies[2],
        json!({"scope": "global", "what": "unlicensedaccess", "body": {"enablePermission": true}})
    );
}

#[tokio::test]
async fn cgraphql_guest_query_pages_and_mutation_reports() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/cgraphql",
            post(|State(log): State<Arc<Log>>, Query(q): Query<HashMap<String, String>>, Json(b): Json<Value>| async move {
                assert_eq!(q["q"], b["operationName"].as_str().unwrap());
                log.bodies.lock().unwrap().push(b.clone());
                match q["q"].as_str() {
                    "GuestDataQuery" => {
                        let after = b["variables"]["after"].as_str();
                        let (nodes, next) = match after {
                            None => (json!([{"accountId": "g1", "email": "a@c.com", "spaces": []}]), json!({"hasNextPage": true, "endCursor": "c1"})),
                            Some("c1") => (json!([{"accountId": "g2", "email": "b@c.com", "spaces": [{"key": "KB"}]}]), json!({"hasNextPage": false, "endCursor": "c2"})),
                            Some(o) => panic!("unexpected cursor {o}"),
                        };
                        Json(json!({"data": {"externalCollaboratorsByCriteria": {"nodes": nodes, "pageInfo": next}}}))
                    }
                    _ => Json(json!({"data": {"resetExCoSpacePermissions": {"success": true, "errors": []}}})),
                }
            }),
        )
        .with_state(log.clone());
    let c = client(serve(app).await);
    let guests: Vec<Guest> = c
        .undocumented()
        .guest_data_query(true)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        guests
            .iter()
            .map(|g| g.account_id.as_str())
            .collect::<Vec<_>>(),
        ["g1", "g2"]
    );
    let out = c
        .undocumented()
        .reset_ex_co_space_permissions("g1", "KB")
        .await
        .unwrap();
    assert!(out.success);
    let bodies = log.bodies.lock().unwrap();
    assert_eq!(bodies[0]["variables"]["spaceAssignmentType"], "UNASSIGNED");
    assert_eq!(
        bodies[2]["variables"],
        json!({"accountId": "g1", "spaceKey": "KB"})
    );
    assert_eq!(c.stats().calls("POST /cgraphql?q=GuestDataQuery"), 2);
}

#[tokio::test]
async fn jira_create_site_user_without_products() {
    let app = Router::new().route(
        "/rest/api/3/user",
        post(|Json(b): Json<Value>| async move {
            assert_eq!(b, json!({"emailAddress": "p@cust.com", "products": []}));
            (StatusCode::CREATED, Json(json!({"self": "x", "accountId": "5b10", "accountType": "atlassian", "emailAddress": "p@cust.com", "active": true})))
        }),
    );
    let c = client(serve(app).await);
    let u = c.create_site_user("p@cust.com").await.unwrap();
    assert_eq!(u.account_id, "5b10");
    assert_eq!(u.active, Some(true));
}

// ------------------------------------------------------------------ today's Cloud

/// Cloud's REST download answers 302 to a signed URL on the media host (another origin). The
/// media host must never see the Confluence credentials.
#[tokio::test]
async fn download_follows_a_cross_origin_redirect_without_credentials() {
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
    let served = data.clone();
    let media_hits = Arc::new(AtomicUsize::new(0));
    let hits = media_hits.clone();
    let media = serve(Router::new().route(
        "/file/{id}/binary",
        get(
            move |h: HeaderMap, Query(q): Query<HashMap<String, String>>| {
                let served = served.clone();
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if h.get(header::AUTHORIZATION).is_some() || h.get(header::COOKIE).is_some() {
                        return (
                            StatusCode::BAD_REQUEST,
                            "credentials sent to the media host",
                        )
                            .into_response();
                    }
                    if q.get("token").map(String::as_str) != Some("signed") {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    ([(header::CONTENT_TYPE, "application/pdf")], served).into_response()
                }
            },
        ),
    ))
    .await;
    // The API on 127.0.0.1, the media host under another name: another origin.
    let media_origin = format!("http://localhost:{}", media.port().unwrap());
    let app = Router::new().route(
        "/wiki/rest/api/content/{page}/child/attachment/{att}/download",
        get(move |h: HeaderMap| {
            let media_origin = media_origin.clone();
            async move {
                assert!(h.get(header::AUTHORIZATION).is_some(), "the API gets auth");
                (
                    StatusCode::FOUND,
                    [(
                        header::LOCATION,
                        format!("{media_origin}/file/f-1/binary?token=signed&client=c&name=a.pdf"),
                    )],
                )
            }
        }),
    );
    let c = client(serve(app).await);
    let d = c.download_attachment("10", "att20").await.unwrap();
    assert_eq!(d.content_type.as_deref(), Some("application/pdf"));
    let body: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    assert_eq!(body.concat(), data);
    assert_eq!(media_hits.load(Ordering::SeqCst), 1);
    let stats = c.stats();
    assert_eq!(
        stats.calls("GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download"),
        1
    );
    assert_eq!(stats.media_requests, 1);
    assert_eq!(stats.total, 1, "the media request is not a Confluence call");
}

/// A signed link that expired before use is asked for again; a download refused for good is
/// reported as a refused download, not as wrong credentials.
#[tokio::test]
async fn expired_media_links_are_renewed_and_refusals_do_not_blame_the_token() {
    let media_hits = Arc::new(AtomicUsize::new(0));
    let hits = media_hits.clone();
    let media = serve(Router::new().route(
        "/file/{id}/binary",
        get(move |Query(q): Query<HashMap<String, String>>| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                // Only the second link handed out is still valid.
                if q.get("token").map(String::as_str) == Some("t2") {
                    (StatusCode::OK, "ok").into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "token expired").into_response()
                }
            }
        }),
    ))
    .await;
    let media_origin = format!("http://localhost:{}", media.port().unwrap());
    let issued = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/wiki/rest/api/content/{page}/child/attachment/{att}/download",
        get(move |Path((page, _att)): Path<(String, String)>| {
            let media_origin = media_origin.clone();
            let issued = issued.clone();
            async move {
                if page == "refused" {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "OAuth realm=\"x\"")],
                        "Unauthorized",
                    )
                        .into_response();
                }
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                (
                    StatusCode::FOUND,
                    [(
                        header::LOCATION,
                        format!("{media_origin}/file/f/binary?token=t{n}"),
                    )],
                )
                    .into_response()
            }
        }),
    );
    let c = client(serve(app).await);
    let d = c.download_attachment("10", "att1").await.unwrap();
    let body: Vec<bytes::Bytes> = d.bytes.try_collect().await.unwrap();
    assert_eq!(body.concat(), b"ok");
    assert_eq!(
        media_hits.load(Ordering::SeqCst),
        2,
        "expired link, then a fresh one"
    );

    let e = c.download_attachment("refused", "att1").await.unwrap_err();
    assert!(
        matches!(e, Error::DownloadRefused { status: 401, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(!text.contains("check the service account email"), "{text}");
    assert!(text.contains("CHANGE-2735"), "{text}");
    assert!(!text.contains(TOKEN));
}

/// Service accounts: client credentials are exchanged for a Bearer token once, reused, and a
/// 401 "scope does not match" names the scopes the call needs.
#[tokio::test]
async fn oauth_client_credentials_bearer_and_missing_scope() {
    let log = Arc::new(Log::default());
    let token_server = serve(
        Router::new()
            .route(
                "/oauth/token",
                post(
                    |State(log): State<Arc<Log>>, body: String| async move {
                        let form: HashMap<String, String> =
                            serde_urlencoded::from_str(&body).unwrap();
                        log.hits.fetch_add(1, Ordering::SeqCst);
                        if form.get("grant_type").map(String::as_str)
                            != Some("client_credentials")
                            || form.get("client_secret").map(String::as_str)
                                != Some("client-secret-XYZ")
                        {
                            return (
                                StatusCode::UNAUTHORIZED,
                                Json(json!({"error": "access_denied", "error_description": "Unauthorized"})),
                            )
                                .into_response();
                        }
                        Json(json!({"access_token": "bearer-abc", "token_type": "Bearer", "expires_in": 3600, "scope": "read:space:confluence"}))
                            .into_response()
                    },
                ),
            )
            .with_state(log.clone()),
    )
    .await;
    let api = serve(
        Router::new()
            .route(
                "/ex/confluence/cloud-1/wiki/api/v2/spaces",
                get(|h: HeaderMap| async move {
                    if h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                        != Some("Bearer bearer-abc")
                    {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    Json(json!({"results": [{"id": "1", "key": "KB", "name": "KB"}], "_links": {}}))
                        .into_response()
                }),
            )
            .route(
                "/ex/confluence/cloud-1/wiki/rest/api/content/search",
                get(|| async {
                    (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"code": 401, "message": "Unauthorized; scope does not match"})),
                    )
                }),
            ),
    )
    .await;
    let oauth = |secret: &str| OAuthClientCredentials {
        client_id: "client-1".into(),
        client_secret: SecretString::from(secret),
        token_url: token_server.join("/oauth/token").unwrap(),
    };
    let mut cfg = config(gateway_base(&api, "cloud-1"));
    cfg.site_url = Some("https://example.atlassian.net".parse().unwrap());
    cfg.oauth = Some(oauth("client-secret-XYZ"));
    let c = Client::new(cfg.clone()).unwrap();
    assert!(c.via_gateway() && c.uses_oauth());
    assert_eq!(c.site_url().as_str(), "https://example.atlassian.net/");
    for _ in 0..3 {
        let spaces: Vec<Space> = c.spaces(&["KB"]).try_collect().await.unwrap();
        assert_eq!(spaces.len(), 1);
    }
    assert_eq!(
        log.hits.load(Ordering::SeqCst),
        1,
        "one token for many calls"
    );
    let e = c
        .content_search("type = page", &[])
        .try_next()
        .await
        .unwrap_err();
    match &e {
        Error::MissingScope { scopes, .. } => {
            assert!(
                scopes.contains("read:content-details:confluence"),
                "{scopes}"
            )
        }
        other => panic!("{other:?}"),
    }

    cfg.oauth = Some(oauth("wrong-secret"));
    let c = Client::new(cfg).unwrap();
    let e = c.spaces(&["KB"]).try_next().await.unwrap_err();
    assert!(matches!(e, Error::OAuthToken { .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong-secret"), "{e}");
}

/// `X-RateLimit-NearLimit: true` makes every call of the client wait before the next request.
#[tokio::test]
async fn near_limit_header_slows_the_client_down() {
    let log = Arc::new(Log::default());
    let app = Router::new()
        .route(
            "/wiki/api/v2/spaces",
            get(|State(log): State<Arc<Log>>| async move {
                let n = log.hits.fetch_add(1, Ordering::SeqCst);
                log.arrivals
                    .lock()
                    .unwrap()
                    .push(("spaces".into(), Instant::now()));
                let near = if n == 0 { "true" } else { "false" };
                (
                    [
                        ("x-ratelimit-nearlimit", near),
                        ("x-ratelimit-remaining", "12"),
                        ("beta-ratelimit-policy", "\"burst\";q=100;w=1"),
                    ],
                    Json(json!({"results": [], "_links": {}})),
                )
            }),
        )
        .with_state(log.clone());
    let mut cfg = config(serve(app).await);
    cfg.retry.near_limit_pause = Duration::from_millis(300);
    let c = Client::new(cfg).unwrap();
    for _ in 0..2 {
        let _: Vec<Space> = c.spaces(&["KB"]).try_collect().await.unwrap();
    }
    let arrivals = log.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    assert!(
        arrivals[1].1 - arrivals[0].1 >= Duration::from_millis(300),
        "the second call waited after the near-limit answer"
    );
    let stats = c.stats();
    assert_eq!(stats.near_limit, 1);
    assert_eq!(
        stats
            .rate_limit_headers
            .get("beta-ratelimit-policy")
            .map(String::as_str),
        Some("\"burst\";q=100;w=1")
    );
}

/// A 403 whose body names a site limit is `LimitReached` (room, not permission); any other 403
/// stays `Forbidden` with the permission hint (issue 16).
#[tokio::test]
async fn a_403_naming_a_limit_is_a_limit_not_a_permission() {
    let app = Router::new().route(
        "/wiki/rest/api/group/userByGroupId",
        post(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
            let message = match q.get("groupId").map(String::as_str) {
                Some("guests") => {
                    "You've reached your guest limit: your site can have up to 225 guests (5 per paid user). Add more paid users or remove guests to invite more."
                }
                Some("users") => {
                    "You've reached the maximum number of users for your plan. To add this user, upgrade your plan."
                }
                _ => "User is not permitted to add users to groups",
            };
            (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "statusCode": 403, "message": message })),
            )
        }),
    );
    let c = Client::new(config(serve(app).await)).unwrap();
    let e = c.add_group_member("guests", "a1").await.unwrap_err();
    assert!(
        matches!(&e, Error::LimitReached { limit: confluence_client::Limit::Guests, message, .. } if message.contains("225 guests")),
        "{e:?}"
    );
    assert_eq!(e.status(), Some(403));
    assert_eq!(e.limit(), Some(confluence_client::Limit::Guests));
    let shown = e.to_string();
    assert!(
        shown.contains("guest limit reached") && shown.contains("portal"),
        "{shown}"
    );
    assert!(!shown.contains("site admin"), "{shown}");
    let e = c.add_group_member("users", "a1").await.unwrap_err();
    assert_eq!(e.limit(), Some(confluence_client::Limit::Users), "{e:?}");
    let e = c.add_group_member("other", "a1").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
    assert_eq!(e.limit(), None);
}
