//! Lazy cursor-following streams. Each page is fetched only when the consumer has taken the
//! previous one, so a sync can stop early without spending calls.

use futures::stream::BoxStream;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::client::{Call, Client, link_next};
use crate::error::Result;

/// A lazily paged listing. `'static` and `Send`, so it can be stored or moved into a task.
pub type Paged<T> = BoxStream<'static, Result<T>>;

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct ListPage<T> {
    #[serde(default = "Vec::new")]
    results: Vec<T>,
    #[serde(default, rename = "_links")]
    links: Option<Links>,
    #[serde(default)]
    size: Option<usize>,
}

/// How the next page is found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cursor {
    /// v2 and v1 search: `Link: <…>; rel="next"` header, else `_links.next`.
    Next,
    /// v1 offset paging: `_links.next` when given, else `start += size` while pages are full.
    StartLimit { limit: usize },
}

impl Client {
    /// Streams `results` of a listing from `first`, following cursors.
    pub(crate) fn paged<T>(
        &self,
        endpoint: &'static str,
        first: Url,
        hint: &'static str,
        cursor: Cursor,
    ) -> Paged<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut next = Some(first);
            while let Some(url) = next.take() {
                let (headers, page): (_, ListPage<T>) = client
                    .json_with_headers(Call::get(endpoint, url.clone(), hint))
                    .await?;
                let n = page.size.unwrap_or(page.results.len());
                let link = match cursor {
                    Cursor::Next => link_next(&headers)
                        .or_else(|| page.links.as_ref().and_then(|l| l.next.clone())),
                    Cursor::StartLimit { .. } => page.links.as_ref().and_then(|l| l.next.clone()),
                };
                next = match (link, cursor) {
                    (Some(l), _) => Some(client.resolve_next(&url, &l)?),
                    (None, Cursor::StartLimit { limit })
                        if page.links.is_none() && n > 0 && n >= limit =>
                    {
                        Some(with_start(&url, n))
                    }
                    _ => None,
                };
                for item in page.results {
                    yield item;
                }
            }
        })
    }
}

/// `url` with `start` advanced by `n`.
fn with_start(url: &Url, n: usize) -> Url {
    let mut start = 0usize;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, v)| {
            if k == "start" {
                start = v.parse().unwrap_or(0);
                false
            } else {
                true
            }
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("start", &(start + n).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_advances() {
        let u = Url::parse(
            "http://h/wiki/rest/api/group/g/membersByGroupId?limit=200&start=200&expand=x",
        )
        .unwrap();
        let n = with_start(&u, 200);
        assert_eq!(
            n.as_str(),
            "http://h/wiki/rest/api/group/g/membersByGroupId?limit=200&expand=x&start=400"
        );
    }
}
