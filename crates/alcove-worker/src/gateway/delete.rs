//! DeleteObject and DeleteObjects (idempotent; per-key errors; Quiet mode).

use alcove_s3::s3_error_from;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{object_key, ufs, Gateway};

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
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in delete.objects {
        let outcome = match object_key(&object.key) {
            Ok(key) => bucket.delete(&key).await.map_err(s3_error_from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) if quiet => {}
            Ok(()) => deleted.push(DeletedObject {
                key: Some(object.key),
                version_id: object.version_id,
                ..Default::default()
            }),
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(object.key),
                message: e.message().map(str::to_owned),
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
