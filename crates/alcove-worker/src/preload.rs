//! Preloading and freeing the page cache for every object under a key prefix: the work behind
//! `alcove load`, `alcove free` and the admin port's `POST /api/v1/cache/load|free`.
//!
//! A job lists the prefix twice, a page of keys at a time: once to count what there is to do
//! (the first event, so a client can show an ETA), then again feeding a bounded pipeline that
//! loads or frees up to `parallel` objects at once. Neither pass holds more than one listing
//! page plus the objects in flight, however large the prefix. An object that fails is reported
//! in its own event and the job goes on; a listing that fails ends the job with the error in
//! its summary.
//!
//! It works only through a bucket's object interface (`list`, `load`, `free`) and the cache's
//! counters: it never touches the page store or the under-storage itself, and knows nothing of
//! HTTP (the admin port turns its events into JSON lines).

use std::sync::Arc;
use std::time::Instant;

use alcove_cache::{BucketObjects, CachedReads};
use alcove_ufs::{ListItem, ListQuery, ObjectKey, UfsResult};
use futures::{stream, Stream, StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Objects handled at once when the request does not say.
pub const DEFAULT_PARALLEL: usize = 8;
/// Most objects a request may ask to handle at once.
pub const MAX_PARALLEL: usize = 64;
/// Keys asked of the under-storage per listing page.
const LIST_PAGE: usize = 1000;

/// What a job does to each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reads every page of the object into the cache.
    Load,
    /// Drops every cached page of the object.
    Free,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Load => "load",
            Action::Free => "free",
        }
    }
}

/// One line of a job's answer. A job sends `Totals` first, then one `Object` per object in the
/// order they finish, then `Summary` last (only `Summary` when the first listing fails).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// What the listing found: objects to handle and their bytes, and the folder objects and
    /// empty objects that need nothing (`skipped`).
    Totals { objects: u64, bytes: u64, skipped: u64 },
    /// One object done: its size (as loaded; as listed when it failed), the pages dropped
    /// (`free` only), and why it failed, if it did.
    Object {
        key: String,
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pages: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The end of the job.
    Summary(Summary),
}

/// The last line of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Objects loaded or freed without error, and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// Objects that failed (each had its own `Object` line with the error).
    pub failed: u64,
    /// Folder objects and empty objects passed over.
    pub skipped: u64,
    /// `free`: pages dropped from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    /// `load`: bytes the worker read from the under-storage while the job ran (all readers of
    /// the worker, not only this job: 0 on an idle worker means everything was cached already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufs_read_bytes: Option<u64>,
    pub seconds: f64,
    /// Why the job stopped before the end of the prefix (a listing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One load or free of a prefix of a cached bucket.
pub struct CacheJob {
    pub action: Action,
    pub bucket: BucketObjects,
    pub prefix: String,
    /// Objects handled at once (at least 1).
    pub parallel: usize,
    /// The worker's cache, for the bytes read from the under-storage in the summary.
    pub cache: Option<Arc<CachedReads>>,
}

/// An object of the listing.
struct Listed {
    key: String,
    size: u64,
}

impl Listed {
    /// Folder objects and empty objects have no pages to load or free.
    fn needs_nothing(&self) -> bool {
        self.key.ends_with('/') || self.size == 0
    }
}

/// What became of one entry of the listing.
enum Outcome {
    Skipped,
    Done(Event),
    ListFailed(String),
}

impl CacheJob {
    /// Runs the job, sending its events to `events`. It stops as soon as `events` is closed
    /// (the client went away): what was loaded stays loaded.
    pub async fn run(self, events: mpsc::Sender<Event>) {
        let started = Instant::now();
        let ufs_before = self.ufs_read_bytes();
        tracing::info!(action = self.action.name(), bucket = self.bucket.name(), prefix = %self.prefix, parallel = self.parallel, "cache job started");
        let mut summary = Summary::default();
        match self.count().await {
            Ok(totals) => {
                if events.send(totals).await.is_err() {
                    return;
                }
                if !self.handle_all(&events, &mut summary).await {
                    tracing::info!(
                        action = self.action.name(),
                        bucket = self.bucket.name(),
                        "cache job stopped: the client went away"
                    );
                    return;
                }
            }
            Err(e) => summary.error = Some(e.to_string()),
        }
        summary.seconds = started.elapsed().as_secs_f64();
        if self.action == Action::Load {
            summary.ufs_read_bytes = Some(self.ufs_read_bytes().saturating_sub(ufs_before));
        }
        tracing::info!(action = self.action.name(), bucket = self.bucket.name(), objects = summary.objects, failed = summary.failed, error = ?summary.error, "cache job done");
        let _ = events.send(Event::Summary(summary)).await;
    }

    /// The first pass: objects and bytes to handle.
    async fn count(&self) -> UfsResult<Event> {
        let (mut objects, mut bytes, mut skipped) = (0, 0, 0);
        let mut listing = std::pin::pin!(self.listing());
        while let Some(listed) = listing.try_next().await? {
            if listed.needs_nothing() {
                skipped += 1;
            } else {
                objects += 1;
                bytes += listed.size;
            }
        }
        Ok(Event::Totals { objects, bytes, skipped })
    }

    /// The second pass: every object, `parallel` at a time, each reported as it finishes.
    /// False when the client went away.
    async fn handle_all(&self, events: &mpsc::Sender<Event>, summary: &mut Summary) -> bool {
        let mut outcomes =
            std::pin::pin!(self.listing().map(|listed| self.handle(listed)).buffer_unordered(self.parallel));
        while let Some(outcome) = outcomes.next().await {
            let event = match outcome {
                Outcome::Skipped => {
                    summary.skipped += 1;
                    continue;
                }
                // The listing stream ends after its error; the objects in flight still finish.
                Outcome::ListFailed(e) => {
                    summary.error = Some(e);
                    continue;
                }
                Outcome::Done(event) => event,
            };
            if let Event::Object { bytes, pages, error, .. } = &event {
                if error.is_some() {
                    summary.failed += 1;
                } else {
                    summary.objects += 1;
                    summary.bytes += bytes;
                }
                if let Some(p) = pages {
                    *summary.pages.get_or_insert(0) += p;
                }
            }
            if events.send(event).await.is_err() {
                return false;
            }
        }
        if self.action == Action::Free {
            summary.pages.get_or_insert(0);
        }
        true
    }

    async fn handle(&self, listed: UfsResult<Listed>) -> Outcome {
        let listed = match listed {
            Ok(l) if l.needs_nothing() => return Outcome::Skipped,
            Ok(l) => l,
            Err(e) => return Outcome::ListFailed(e.to_string()),
        };
        let failed = |error: String| Event::Object {
            key: listed.key.clone(),
            bytes: listed.size,
            pages: None,
            error: Some(error),
        };
        // The listing came from the under-storage, which may hold keys Alcove would refuse.
        let key = match ObjectKey::parse(&listed.key) {
            Ok(k) => k,
            Err(e) => return Outcome::Done(failed(e.to_string())),
        };
        let event = match self.action {
            Action::Load => match self.bucket.load(&key).await {
                Ok(bytes) => Event::Object { key: listed.key.clone(), bytes, pages: None, error: None },
                Err(e) => failed(e.to_string()),
            },
            Action::Free => {
                let pages = self.bucket.free(&key).await;
                Event::Object { key: listed.key.clone(), bytes: listed.size, pages: Some(pages), error: None }
            }
        };
        Outcome::Done(event)
    }

    /// Every object under the prefix, in key order, one listing page at a time; an error ends it.
    fn listing(&self) -> impl Stream<Item = UfsResult<Listed>> + '_ {
        let pages = stream::try_unfold(Some(None::<String>), move |cursor| async move {
            let Some(start_after) = cursor else { return Ok(None) };
            let query = ListQuery { prefix: self.prefix.clone(), delimiter: None, start_after, max_keys: LIST_PAGE };
            let page = self.bucket.list(query).await?;
            // Resume after the last item; a page that is empty cannot be resumed after, so it ends.
            let next = page.truncated.then(|| page.items.last().map(|i| Some(i.name().to_owned()))).flatten();
            Ok(Some((page.items, next)))
        });
        pages.map_ok(|items| stream::iter(items.into_iter().filter_map(object_of).map(Ok))).try_flatten()
    }

    fn ufs_read_bytes(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.stats().ufs_read_bytes)
    }
}

/// The object of a listing item (without a delimiter there are no common prefixes).
fn object_of(item: ListItem) -> Option<Listed> {
    match item {
        ListItem::Object { key, info } => Some(Listed { key, size: info.size }),
        ListItem::CommonPrefix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json_lines() {
        let totals = serde_json::to_string(&Event::Totals { objects: 2, bytes: 10, skipped: 1 }).unwrap();
        assert_eq!(totals, r#"{"type":"totals","objects":2,"bytes":10,"skipped":1}"#);
        let failed = Event::Object { key: "a/b".into(), bytes: 3, pages: None, error: Some("gone".into()) };
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"type":"object","key":"a/b","bytes":3,"error":"gone"}"#
        );
        let summary =
            Event::Summary(Summary { objects: 1, bytes: 3, pages: Some(1), seconds: 0.5, ..Default::default() });
        let line = serde_json::to_string(&summary).unwrap();
        assert_eq!(line, r#"{"type":"summary","objects":1,"bytes":3,"failed":0,"skipped":0,"pages":1,"seconds":0.5}"#);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), summary);
    }

    #[test]
    fn folders_and_empty_objects_need_nothing() {
        assert!(Listed { key: "dir/".into(), size: 0 }.needs_nothing());
        assert!(Listed { key: "empty".into(), size: 0 }.needs_nothing());
        assert!(!Listed { key: "data".into(), size: 1 }.needs_nothing());
    }
}
