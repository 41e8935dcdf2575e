//! `alcove load` and `alcove free`: checks the `s3://BUCKET[/PREFIX]` argument, asks the worker's
//! admin API to load or free that prefix, and shows the streamed answer through
//! [`Reporter`](crate::progress::Reporter). The work itself is the worker's.

use std::io::IsTerminal as _;

use alcove_worker::preload::{Action, Event};
use serde_json::json;

use crate::admin_client;
use crate::human;
use crate::progress::Reporter;

/// A bucket and key prefix, from `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// A key prefix as in S3 listings: `logs` also takes `logs2/…`; `logs/` is the folder.
    pub prefix: String,
}

/// Why an `s3://` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("'{0}' is not an s3:// URI; expected s3://BUCKET[/PREFIX]")]
    NotS3(String),
    #[error("'{0}' names no bucket; expected s3://BUCKET[/PREFIX]")]
    NoBucket(String),
    #[error("'{uri}': '{bucket}' cannot be a bucket name (no spaces, '?', '#' or '\\')")]
    BadBucket { uri: String, bucket: String },
}

impl Target {
    /// Parses `s3://BUCKET[/PREFIX]` (the scheme in any case). Whether the bucket exists is the
    /// worker's to say.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("s3://"))
            .and_then(|_| uri.get(5..))
            .ok_or_else(|| UriError::NotS3(uri.to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(UriError::NoBucket(uri.to_owned()));
        }
        if bucket.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\')) {
            return Err(UriError::BadBucket { uri: uri.to_owned(), bucket: bucket.to_owned() });
        }
        Ok(Self { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

/// Why `alcove load` or `alcove free` did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Uri(#[from] UriError),
    /// Refused by the worker, or it could not be reached.
    #[error("{0}")]
    Admin(String),
    #[error("{} failed (listed above)", human::count(*.0, "object", "objects"))]
    Failed(u64),
    #[error("stopped early: {0}")]
    Stopped(String),
    #[error("the worker's answer ended before its summary (did the worker stop?)")]
    Cut,
}

/// Runs `alcove load|free URI` against the admin API at `admin`.
pub async fn run(action: Action, uri: &str, admin: &admin_client::AdminPort, parallel: u64) -> Result<(), JobError> {
    let target = Target::parse(uri)?;
    let shown = target.to_string();
    let mut reporter = Reporter::new(action, &shown, std::io::stderr().is_terminal());
    let path = format!("/api/v1/cache/{}", action.name());
    let body = json!({"bucket": target.bucket, "prefix": target.prefix, "parallel": parallel});
    let streamed = admin_client::post_lines(admin, &path, body, |line| {
        // A line this CLI does not know (a newer worker) is passed over.
        if let Ok(event) = serde_json::from_slice::<Event>(line) {
            reporter.event(event);
        }
    })
    .await;
    let (_, summary) = reporter.finish();
    streamed.map_err(JobError::Admin)?;
    let summary = summary.ok_or(JobError::Cut)?;
    if let Some(error) = summary.error {
        return Err(JobError::Stopped(error));
    }
    if summary.failed > 0 {
        return Err(JobError::Failed(summary.failed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(bucket: &str, prefix: &str) -> Target {
        Target { bucket: bucket.into(), prefix: prefix.into() }
    }

    #[test]
    fn uris_name_a_bucket_and_a_prefix() {
        assert_eq!(Target::parse("s3://photos"), Ok(target("photos", "")));
        assert_eq!(Target::parse("s3://photos/"), Ok(target("photos", "")));
        assert_eq!(Target::parse("s3://photos/2024/cats/"), Ok(target("photos", "2024/cats/")));
        assert_eq!(Target::parse("S3://photos/a b"), Ok(target("photos", "a b")));
        assert_eq!(Target::parse("s3://photos//x"), Ok(target("photos", "/x")), "the prefix is taken as written");
        assert_eq!(Target::parse("s3://photos/2024").map(|t| t.to_string()), Ok("s3://photos/2024".to_owned()));
        assert_eq!(Target::parse("s3://photos/").map(|t| t.to_string()), Ok("s3://photos".to_owned()));
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for uri in ["photos/2024", "s3:/photos", "http://photos/x", "", "s3:", "s3\u{e9}://x"] {
            let e = Target::parse(uri).unwrap_err();
            assert_eq!(e, UriError::NotS3(uri.into()));
            assert!(e.to_string().contains("expected s3://BUCKET[/PREFIX]"), "{e}");
        }
        assert_eq!(Target::parse("s3://"), Err(UriError::NoBucket("s3://".into())));
        assert_eq!(Target::parse("s3:///prefix"), Err(UriError::NoBucket("s3:///prefix".into())));
        assert!(matches!(Target::parse("s3://my bucket/x"), Err(UriError::BadBucket { .. })));
        assert!(matches!(Target::parse("s3://b?x=1"), Err(UriError::BadBucket { .. })));
    }
}
