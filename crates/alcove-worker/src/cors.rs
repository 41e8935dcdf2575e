//! CORS in the front end. s3s does not route `OPTIONS`, so preflight requests are answered here,
//! before authentication (browsers send them unsigned); and the answer to any other request that
//! carries `Origin` gets the bucket's `Access-Control-*` headers. The rules are read through the
//! object service and interpreted by alcove-s3 (`cors`): this module may not interpret them itself,
//! and changes nothing of an answer but its headers.

use std::sync::Arc;

use alcove_cache::ObjectService;
use alcove_s3::cors::CorsRequest;
use alcove_s3::s3_error_from;
use alcove_ufs::CorsRule;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Response};
use s3s::S3Error;

/// The CORS side of the front end.
pub struct FrontCors {
    objects: Arc<ObjectService>,
}

impl FrontCors {
    pub fn new(objects: Arc<ObjectService>) -> Self {
        Self { objects }
    }

    /// Answers a preflight for `bucket`: 200 with the allowing rule's headers, or the error
    /// (no `Origin`: 400; no bucket: 404; no configuration or no matching rule: 403).
    pub async fn preflight(&self, bucket: &str, headers: &HeaderMap) -> Result<Response<s3s::Body>, S3Error> {
        let asked = CorsRequest::preflight(headers)?;
        let rules = self.rules(bucket).await?;
        let allowed = asked.answer_preflight(rules.as_deref())?;
        let mut resp = Response::new(s3s::Body::empty());
        resp.headers_mut().extend(allowed);
        resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(0));
        Ok(resp)
    }

    /// Adds the `Access-Control-*` headers the bucket's rules give `asked` (errors included, so
    /// a page can read them). Best effort: a bucket whose rules cannot be read gets none.
    pub async fn decorate(&self, bucket: &str, asked: &CorsRequest, headers: &mut HeaderMap) {
        match self.rules(bucket).await {
            Ok(Some(rules)) => headers.extend(asked.answer_actual(&rules)),
            Ok(None) => {}
            Err(e) => tracing::debug!(bucket, error = %e, "CORS rules not read"),
        }
    }

    async fn rules(&self, bucket: &str) -> Result<Option<Vec<CorsRule>>, S3Error> {
        if bucket.is_empty() {
            return Ok(None);
        }
        let objects = self.objects.bucket(bucket).map_err(s3_error_from)?;
        objects.bucket_cors().await.map_err(s3_error_from)
    }
}
