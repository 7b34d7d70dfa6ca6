//! What readers do and tell the admin — the pages they view, the searches they run,
//! "Was this helpful?" votes — recorded off the request path.
//!
//! A handler hands its event to [`Insights::send`], which never waits: the event goes into a
//! bounded channel that one background writer ([`Insights::run_writer`], started by
//! [`crate::serve`]) drains into the store, batching searches and page views. When the channel is full
//! (the store is slow or down, or a burst) the event is dropped and counted
//! ([`Insights::dropped`]), so a page view or a search never waits on an insights write.
//! Readers are named by their domain; their email only when `[portal] record_emails` says
//! so, and never with page views: a page view keeps a hash of the email as the reader key
//! (what counting unique readers needs), whatever that setting says.
//!
//! A page view costs the request path a hash of (page, reader) and an atomic load
//! ([`Insights::page_view`]); only a view that does not repeat one queued within the repeat
//! window also costs a clock read, two small copies and a `try_send`. The reader key and the
//! domain are computed by the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Viewer};
use kbgate_store::{FeedbackRecord, PageViewEvent, SearchEvent, Store};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Events waiting for the writer at most; beyond, new ones are dropped (and counted).
pub(crate) const QUEUE: usize = 4096;
/// How often the writer drains the queue: [`QUEUE`] events per period at most are kept, so
/// about 80,000 a second before any is dropped.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// Events taken from the queue at once (searches and page views are each written in one
/// statement per batch).
const BATCH: usize = 256;

/// One thing to record.
#[derive(Debug)]
pub(crate) enum Event {
    Feedback(FeedbackRecord),
    Search(SearchEvent),
    /// A page served to a reader: only what the handler has at hand, so that the request
    /// path does no work for it (the writer derives the domain and the reader key).
    PageView {
        at: DateTime<Utc>,
        page_id: String,
        space_key: String,
        email: Email,
    },
}

/// Repeated views of one page by one reader within this window count once: a reload storm
/// (or a load test of one page) must not make the insights writer the busiest thread of the
/// process — measured, recording every view of a page served at ~48,000 req/s took a core
/// on a 2-core machine and halved page-view throughput (portal bench, 2026-12-07).
const REPEAT_WINDOW_MS: i64 = 30_000;
/// (page, reader) pairs remembered at most; beyond, the stale ones are forgotten, and all
/// of them if none is stale (their next view then counts).
const REPEAT_MEMORY: usize = 100_000;

/// The writer's memory of recent (page, reader) views, by a hash of the pair.
#[derive(Default)]
struct Repeats {
    last: std::collections::HashMap<u64, i64>,
}

impl Repeats {
    /// Whether a view of `page_id` by `email` at `at_ms` counts: not a repeat of one within
    /// [`REPEAT_WINDOW_MS`]. A counted view starts a new window.
    fn counts(&mut self, page_id: &str, email: &Email, at_ms: i64) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        page_id.hash(&mut h);
        email.as_str().to_ascii_lowercase().hash(&mut h);
        let key = h.finish();
        if let Some(&t) = self.last.get(&key)
            && at_ms - t < REPEAT_WINDOW_MS
        {
            return false;
        }
        if self.last.len() >= REPEAT_MEMORY {
            self.last.retain(|_, t| at_ms - *t < REPEAT_WINDOW_MS);
            if self.last.len() >= REPEAT_MEMORY {
                self.last.clear();
            }
        }
        self.last.insert(key, at_ms);
        true
    }
}

/// The page views the handlers queued lately, by a hash of (page, reader): a repeat within
/// [`REPEAT_WINDOW_MS`] of a queued one is not queued at all, so a page served at the rate of
/// a load test builds no event and takes no turn on the queue (the writer would drop it as a
/// repeat anyway; measured, the queue filled and dropped events at ~80,000 views a second).
/// One atomic word per slot, no lock: two readers hashing to one slot only cost each other
/// an event the writer's own check ([`Repeats`]) then sorts out, and it never suppresses a
/// view the writer would count (a view is skipped only within the window of one queued).
struct RecentlyQueued {
    /// Per slot: the pair's tag (upper 32 bits of its hash) and when it was queued
    /// (milliseconds since `epoch`, wrapping, lower 32 bits); 0 for an empty slot.
    slots: Box<[AtomicU64]>,
    epoch: std::time::Instant,
    window_ms: u32,
}

/// Slots of [`RecentlyQueued`] (a power of two): 512 KiB.
const QUEUED_SLOTS: usize = 1 << 16;

impl RecentlyQueued {
    fn new(window_ms: u32) -> RecentlyQueued {
        RecentlyQueued {
            slots: (0..QUEUED_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            epoch: std::time::Instant::now(),
            window_ms,
        }
    }

    /// Whether a view of `page_id` by `email` repeats one queued within the window; when it
    /// does not, it is remembered as queued now.
    fn is_repeat(&self, page_id: &str, email: &Email) -> bool {
        use std::hash::Hasher;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(page_id.as_bytes());
        h.write_u8(0);
        let email = email.as_str();
        if email.bytes().any(|b| b.is_ascii_uppercase()) {
            h.write(email.to_ascii_lowercase().as_bytes());
        } else {
            h.write(email.as_bytes());
        }
        let hash = h.finish();
        let tag = hash >> 32;
        // Truncation intended: a wrapping millisecond clock (49 days), compared by difference.
        let now = self.epoch.elapsed().as_millis() as u32;
        let slot = &self.slots[(hash as usize) & (QUEUED_SLOTS - 1)];
        let was = slot.load(Ordering::Relaxed);
        if was != 0 && was >> 32 == tag && now.wrapping_sub(was as u32) < self.window_ms {
            return true;
        }
        slot.store((tag << 32) | u64::from(now), Ordering::Relaxed);
        false
    }
}

/// A reader's stable key that is not their email: a hash of the case-folded address. The
/// same for votes (`voter`) and page views (`reader`).
pub(crate) fn reader_key(email: &Email) -> String {
    // Case folded: `Ann@` and `ann@` are one person to every mail system that matters.
    let key = Sha256::digest(format!("kbgate-voter\0{}", email.as_str().to_lowercase()).as_bytes());
    hex::encode(key)
}

/// The sending side, shared by the handlers, and the receiving side until the writer takes
/// it.
pub(crate) struct Insights {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Event>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Event>>>,
    dropped: AtomicU64,
    written: AtomicU64,
    record_emails: bool,
    queued_views: RecentlyQueued,
}

/// Who did something, as insights keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Who {
    /// A stable key for the person that is not their email: one vote per person and page.
    pub voter: String,
    pub domain: String,
    pub email: Option<String>,
}

impl Insights {
    pub(crate) fn new(store: Arc<dyn Store>, record_emails: bool) -> Insights {
        Insights::with_capacity(store, QUEUE, record_emails)
    }

    pub(crate) fn with_capacity(
        store: Arc<dyn Store>,
        capacity: usize,
        record_emails: bool,
    ) -> Insights {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Insights {
            store,
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            record_emails,
            queued_views: RecentlyQueued::new(REPEAT_WINDOW_MS as u32),
        }
    }

    /// The viewer as insights name them: the domain, a hash of the email as the voter key,
    /// and the email itself only when configured.
    pub(crate) fn who(&self, viewer: &Viewer) -> Who {
        let email = viewer.email().as_str();
        Who {
            voter: reader_key(viewer.email()),
            domain: viewer.email().domain().as_str().to_owned(),
            email: self.record_emails.then(|| email.to_owned()),
        }
    }

    /// A search event for `viewer`, at `at`.
    pub(crate) fn search_event(
        &self,
        viewer: &Viewer,
        query: &str,
        results: u64,
        at: DateTime<Utc>,
    ) -> SearchEvent {
        let who = self.who(viewer);
        SearchEvent {
            at,
            domain: who.domain,
            email: who.email,
            query: query.to_owned(),
            results,
        }
    }

    /// Queues an event for the writer; never waits. Dropped (and counted) when the queue is
    /// full or no writer runs any more.
    pub(crate) fn send(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "insights queue full: events dropped");
            }
        }
    }

    /// A page served to a reader, queued unless it repeats a view queued within the repeat
    /// window (see [`RecentlyQueued`]).
    pub(crate) fn page_view(&self, page_id: &str, space_key: &str, email: &Email) {
        if self.queued_views.is_repeat(page_id, email) {
            return;
        }
        self.send(Event::PageView {
            at: Utc::now(),
            page_id: page_id.to_owned(),
            space_key: space_key.to_owned(),
            email: email.clone(),
        });
    }

    /// Events dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events the writer has stored.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Drains the queue into the store until `stop` is cancelled, then writes what is still
    /// queued and returns. Only the first caller gets the queue; later ones return at once.
    pub(crate) async fn run_writer(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let Some(mut rx) = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            tracing::warn!("insights writer already running; not starting another");
            return;
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut repeats = Repeats::default();
        // The writer drains the queue on a clock rather than awaiting each event: a receiver
        // waiting in `recv` is woken by every send, and at tens of thousands of page views a
        // second those wake-ups (another worker thread unparked per view) cost the request
        // path more than the events themselves.
        loop {
            if stop
                .run_until_cancelled(tokio::time::sleep(DRAIN_EVERY))
                .await
                .is_none()
            {
                break;
            }
            loop {
                match rx.try_recv() {
                    Ok(event) => {
                        batch.push(event);
                        if batch.len() >= BATCH {
                            self.write(&mut batch, &mut repeats).await;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.write(&mut batch, &mut repeats).await;
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                self.write(&mut batch, &mut repeats).await;
            }
        }
        // Shutting down: what is already queued is written, nothing waits for more.
        rx.close();
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&mut batch, &mut repeats).await;
        }
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "insights writer stopped; events were dropped under load"
            );
        }
    }

    async fn write(&self, batch: &mut Vec<Event>, repeats: &mut Repeats) {
        let store = &*self.store;
        let mut searches = Vec::new();
        let mut views = Vec::new();
        for event in batch.drain(..) {
            match event {
                Event::Search(s) => searches.push(s),
                Event::PageView {
                    at, page_id, email, ..
                } if !repeats.counts(&page_id, &email, at.timestamp_millis()) => {}
                Event::PageView {
                    at,
                    page_id,
                    space_key,
                    email,
                } => views.push(PageViewEvent {
                    at,
                    page_id,
                    space_key,
                    domain: email.domain().as_str().to_owned(),
                    reader: reader_key(&email),
                }),
                Event::Feedback(f) => match store.put_feedback(&f).await {
                    Ok(_) => {
                        self.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "storing feedback failed"),
                },
            }
        }
        if !searches.is_empty() {
            match store.record_searches(&searches).await {
                Ok(()) => {
                    self.written
                        .fetch_add(searches.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = searches.len(), "storing search events failed")
                }
            }
        }
        if !views.is_empty() {
            match store.record_page_views(&views).await {
                Ok(()) => {
                    self.written
                        .fetch_add(views.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = views.len(), "storing page views failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbgate_store::FeedbackFilter;

    fn search(q: &str) -> Event {
        Event::Search(SearchEvent {
            at: Utc::now(),
            domain: "acme.com".into(),
            email: None,
            query: q.into(),
            results: 0,
        })
    }

    #[test]
    fn repeated_views_of_a_page_by_a_reader_count_once_per_window() {
        let ann = Email::parse("ann@acme.com").unwrap();
        let ann_upper = Email::parse("Ann@Acme.com").unwrap();
        let bob = Email::parse("bob@acme.com").unwrap();
        let mut r = Repeats::default();
        assert!(r.counts("1", &ann, 0));
        assert!(!r.counts("1", &ann, 1_000), "a reload within the window");
        assert!(
            !r.counts("1", &ann_upper, 2_000),
            "the same reader, other case"
        );
        assert!(r.counts("2", &ann, 2_000), "another page");
        assert!(r.counts("1", &bob, 2_000), "another reader");
        assert!(r.counts("1", &ann, REPEAT_WINDOW_MS), "after the window");
        assert!(!r.counts("1", &ann, REPEAT_WINDOW_MS + 1));
    }

    #[test]
    fn repeated_views_are_not_queued_within_the_window() {
        let ann = Email::parse("ann@acme.com").unwrap();
        let ann_upper = Email::parse("Ann@Acme.com").unwrap();
        let bob = Email::parse("bob@acme.com").unwrap();
        let q = RecentlyQueued::new(200);
        assert!(!q.is_repeat("1", &ann), "the first view is queued");
        assert!(q.is_repeat("1", &ann), "a reload within the window");
        assert!(q.is_repeat("1", &ann_upper), "the same reader, other case");
        assert!(!q.is_repeat("2", &ann), "another page");
        assert!(!q.is_repeat("1", &bob), "another reader");
        assert!(
            !q.is_repeat("12", &ann),
            "page and reader are not run together"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(!q.is_repeat("1", &ann), "after the window");
        assert!(q.is_repeat("1", &ann));
    }

    #[tokio::test]
    async fn page_views_repeated_by_a_reader_take_one_place_in_the_queue() {
        let t = kbgate_store::testing::sqlite().await;
        let ins = Insights::with_capacity(t.store.clone(), 2, false);
        let ann = Email::parse("ann@acme.com").unwrap();
        for _ in 0..10 {
            ins.page_view("1", "KB", &ann);
        }
        ins.page_view("2", "KB", &ann);
        // Two places: without the filter the reloads would have filled the queue.
        assert_eq!(ins.dropped(), 0);
        ins.page_view("3", "KB", &ann);
        assert_eq!(
            ins.dropped(),
            1,
            "a third distinct view finds the queue full"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let t = kbgate_store::testing::sqlite().await;
        let ins = Insights::with_capacity(t.store.clone(), 2, false);
        // No writer yet: the third and later events find the queue full.
        for i in 0..5 {
            ins.send(search(&format!("q{i}")));
        }
        assert_eq!(ins.dropped(), 3);
        // The writer stores what was queued, and on stop what is still queued.
        let ins = Arc::new(ins);
        let stop = tokio_util::sync::CancellationToken::new();
        let writer = tokio::spawn(ins.clone().run_writer(stop.clone()));
        for _ in 0..500 {
            if ins.written() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(ins.written(), 2, "the writer drains the queue");
        ins.send(Event::Feedback(FeedbackRecord {
            page_id: "1".into(),
            voter: "v".into(),
            space_key: "KB".into(),
            page_title: "T".into(),
            domain: "acme.com".into(),
            email: None,
            helpful: true,
            comment: None,
            at: Utc::now(),
        }));
        ins.send(Event::PageView {
            at: Utc::now(),
            page_id: "7".into(),
            space_key: "KB".into(),
            email: Email::parse("Ann@Acme.com").unwrap(),
        });
        stop.cancel();
        writer.await.unwrap();
        assert_eq!(ins.written(), 4);
        // The page view names the domain and a hash of the case-folded email, never the
        // email (even if emails were recorded: see the module docs).
        let views = t
            .store
            .insights_summary(&kbgate_store::InsightsQuery {
                domain: Some("acme.com".into()),
                top: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((views.page_views, views.unique_readers), (1, 1));
        assert_eq!(views.top_pages, [("7".to_owned(), "KB".to_owned(), 1)]);
        assert_eq!(
            reader_key(&Email::parse("Ann@Acme.com").unwrap()),
            reader_key(&Email::parse("ann@acme.com").unwrap())
        );
        assert!(!reader_key(&Email::parse("ann@acme.com").unwrap()).contains("ann"));
        let queries: Vec<String> = t
            .store
            .search_events(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.query)
            .collect();
        assert_eq!(queries, ["q1", "q0"]);
        assert_eq!(
            t.store
                .feedback(&FeedbackFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        // A second writer gets no queue; after the writer ended, events are dropped.
        ins.clone().run_writer(stop).await;
        ins.send(search("late"));
        assert_eq!(ins.dropped(), 4);
    }
}
