//! Bucket-level settings — the tag set and the CORS rules — kept as small JSON documents in the
//! bucket's state folder on the worker's disk. Every kind of bucket has one: a remote mount's
//! state folder is its staging folder, so its settings never go to the remote.
//!
//! A document is replaced whole by a write to a temp file, an fsync and a rename, so readers see
//! the old settings or the new ones. This module stores what the S3 layer has already validated;
//! it may not parse S3 requests or judge the settings it keeps.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::key::STATE_DIR;
use crate::local::{blocking, LocalFs};
use crate::{UfsError, UfsResult};

/// One CORS rule of a bucket, as the client gave it (checked by the S3 layer before it is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorsRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

/// The documents a bucket's state folder holds.
#[derive(Debug, Clone, Copy)]
enum BucketDoc {
    Tags,
    Cors,
}

impl BucketDoc {
    fn file_name(self) -> &'static str {
        match self {
            BucketDoc::Tags => "bucket-tagging.json",
            BucketDoc::Cors => "bucket-cors.json",
        }
    }

    /// What the error message says was being done.
    fn what(self) -> &'static str {
        match self {
            BucketDoc::Tags => "bucket tags",
            BucketDoc::Cors => "the bucket's CORS configuration",
        }
    }
}

impl LocalFs {
    fn state_dir(&self) -> PathBuf {
        self.root().join(STATE_DIR)
    }

    /// The bucket's tag set, if one was put.
    pub async fn bucket_tags(&self) -> UfsResult<Option<BTreeMap<String, String>>> {
        self.read_doc(BucketDoc::Tags).await
    }

    /// Replaces (or, with `None`, removes) the bucket's tag set.
    pub async fn set_bucket_tags(&self, tags: Option<BTreeMap<String, String>>) -> UfsResult<()> {
        self.write_doc(BucketDoc::Tags, tags).await
    }

    /// The bucket's CORS rules, if a configuration was put.
    pub async fn bucket_cors(&self) -> UfsResult<Option<Vec<CorsRule>>> {
        self.read_doc(BucketDoc::Cors).await
    }

    /// Replaces (or, with `None`, removes) the bucket's CORS rules.
    pub async fn set_bucket_cors(&self, rules: Option<Vec<CorsRule>>) -> UfsResult<()> {
        self.write_doc(BucketDoc::Cors, rules).await
    }

    async fn read_doc<T: DeserializeOwned + Send + 'static>(&self, doc: BucketDoc) -> UfsResult<Option<T>> {
        let path = self.state_dir().join(doc.file_name());
        let fail = move |e: io::Error| UfsError::io(format!("reading {}", doc.what()), e);
        blocking(move || match fs::read(&path) {
            Ok(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| fail(e.into())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(e)),
        })
        .await
    }

    async fn write_doc<T: Serialize + Send + 'static>(&self, doc: BucketDoc, value: Option<T>) -> UfsResult<()> {
        let path = self.state_dir().join(doc.file_name());
        let fail = move |e: io::Error| UfsError::io(format!("saving {}", doc.what()), e);
        let Some(value) = value else {
            return blocking(move || match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(fail(e)),
                _ => Ok(()),
            })
            .await;
        };
        let raw = serde_json::to_vec(&value).map_err(|e| fail(io::Error::other(e)))?;
        // The worker's temp folder: a write cut short by a crash is removed at the next start.
        let temp = self.new_temp_file().await?;
        let temp_path = temp.0.clone();
        blocking(move || {
            fs::write(&temp_path, raw).map_err(fail)?;
            File::open(&temp_path).and_then(|f| f.sync_all()).map_err(fail)?;
            fs::rename(&temp_path, &path).map_err(fail)
        })
        .await?;
        temp.disarm();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn documents_round_trip_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        assert_eq!(fs.bucket_cors().await.unwrap(), None);
        let rules = vec![CorsRule {
            allowed_origins: vec!["https://*.example.com".into()],
            allowed_methods: vec!["GET".into()],
            max_age_seconds: Some(60),
            ..Default::default()
        }];
        fs.set_bucket_cors(Some(rules.clone())).await.unwrap();
        fs.set_bucket_tags(Some([("k".to_owned(), "v".to_owned())].into())).await.unwrap();
        assert_eq!(fs.bucket_cors().await.unwrap(), Some(rules));
        assert_eq!(fs.bucket_tags().await.unwrap().map(|t| t.len()), Some(1), "documents are separate");
        fs.set_bucket_cors(None).await.unwrap();
        fs.set_bucket_cors(None).await.unwrap();
        assert_eq!(fs.bucket_cors().await.unwrap(), None);
        let state = dir.path().join(STATE_DIR);
        let files: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().filter(|e| e.path().is_file()).collect();
        assert_eq!(files.len(), 1, "only the tag document is left");
        assert_eq!(std::fs::read_dir(state.join("tmp")).unwrap().count(), 0, "no temp files");
    }
}
