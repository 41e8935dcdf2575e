//! DeleteObject and DeleteObjects (idempotent; per-key errors; Quiet mode).

use std::collections::BTreeMap;

use alcove_cache::BucketObjects;
use alcove_cluster::Member;
use alcove_s3::policy::Authorizer;
use alcove_s3::s3_error_from;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};

use super::{object_key, ufs, Gateway};
use crate::cluster::{ClusterLink, DeleteOutcome};

/// AWS's limit on keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let key = object_key(&req.input.key)?;
    let bucket = gw.bucket(&req.input.bucket)?;
    ufs(bucket.delete(&key).await)?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub async fn delete_objects(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let bucket = gw.bucket(&req.input.bucket)?;
    let delete = req.input.delete;
    if delete.objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(MalformedXML, "A DeleteObjects request may name at most 1000 keys."));
    }
    let quiet = delete.quiet.unwrap_or(false);
    // Each key needs write; those refused get AccessDenied in the answer, as AWS answers them,
    // and the others are deleted (here, before the keys go to their owners in a cluster).
    let authorizer = req.extensions.get::<Authorizer>();
    let allowed: Vec<bool> =
        delete.objects.iter().map(|o| authorizer.is_none_or(|a| a.may_delete(bucket.name(), &o.key))).collect();
    let keys: Vec<String> =
        delete.objects.iter().zip(&allowed).filter(|(_, ok)| **ok).map(|(o, _)| o.key.clone()).collect();
    let done = match &gw.cluster {
        Some(cluster) => delete_by_owner(cluster, &bucket, &keys).await,
        None => delete_keys(&bucket, &keys).await.into_iter().map(|r| r.err().map(error_parts)).collect(),
    };
    let mut done = done.into_iter();
    let outcomes: Vec<DeleteOutcome> = allowed
        .iter()
        .map(|ok| match ok {
            true => done.next().flatten(),
            false => Some(("AccessDenied".to_owned(), "Access Denied".to_owned())),
        })
        .collect();
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (object, outcome) in delete.objects.into_iter().zip(outcomes) {
        match outcome {
            None if quiet => {}
            None => deleted.push(DeletedObject {
                key: Some(object.key),
                version_id: object.version_id,
                ..Default::default()
            }),
            Some((code, message)) => errors.push(Error {
                code: Some(code),
                key: Some(object.key),
                message: Some(message),
                version_id: object.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: (!deleted.is_empty()).then_some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

/// Deletes each key here, one after the other: what happened to each, in order. Also serves
/// the deletes other workers hand to this one as the keys' owner.
pub async fn delete_keys(bucket: &BucketObjects, keys: &[String]) -> Vec<S3Result<()>> {
    let mut outcomes = Vec::with_capacity(keys.len());
    for key in keys {
        outcomes.push(match object_key(key) {
            Ok(key) => bucket.delete(&key).await.map_err(s3_error_from),
            Err(e) => Err(e),
        });
    }
    outcomes
}

/// Deletes each key on the worker that owns it (so no worker keeps a deleted object in its
/// cache), the owners' shares at once; the outcomes in the keys' order.
async fn delete_by_owner(cluster: &ClusterLink, bucket: &BucketObjects, keys: &[String]) -> Vec<DeleteOutcome> {
    let mut by_owner: BTreeMap<Option<String>, (Option<Member>, Vec<usize>)> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let owner = cluster.owner_elsewhere(bucket.name(), key);
        by_owner.entry(owner.as_ref().map(|m| m.id.clone())).or_insert_with(|| (owner, Vec::new())).1.push(i);
    }
    let shares = by_owner.into_values().map(|(owner, indexes)| async move {
        let share: Vec<String> = indexes.iter().map(|&i| keys[i].clone()).collect();
        let outcomes = match &owner {
            None => delete_keys(bucket, &share).await.into_iter().map(|r| r.err().map(error_parts)).collect(),
            Some(owner) => match cluster.delete_at(owner, bucket.name(), share).await {
                Ok(outcomes) if outcomes.len() == indexes.len() => outcomes,
                Ok(_) => unreachable_owner(owner, "answered for another number of keys", indexes.len()),
                Err(e) => unreachable_owner(owner, &e.to_string(), indexes.len()),
            },
        };
        (indexes, outcomes)
    });
    let mut ordered: Vec<DeleteOutcome> = vec![None; keys.len()];
    for (indexes, outcomes) in futures::future::join_all(shares).await {
        for (i, outcome) in indexes.into_iter().zip(outcomes) {
            ordered[i] = outcome;
        }
    }
    ordered
}

fn unreachable_owner(owner: &Member, reason: &str, count: usize) -> Vec<DeleteOutcome> {
    tracing::warn!(owner = %owner.id, reason, "could not delete keys on their owner");
    let message = format!("The worker that owns this key cannot be reached; please retry. ({reason})");
    vec![Some(("ServiceUnavailable".to_owned(), message)); count]
}

/// An S3 error as a per-key DeleteObjects error: code and message.
pub fn error_parts(e: S3Error) -> (String, String) {
    (e.code().as_str().to_owned(), e.message().unwrap_or_default().to_owned())
}
