//! Bucket actions: ListBuckets (paged by `max-buckets` and an opaque continuation token),
//! HeadBucket, CreateBucket, DeleteBucket, GetBucketLocation, GetBucketVersioning.

use alcove_s3::policy::Authorizer;
use alcove_ufs::mount::validate_bucket_name;
use alcove_ufs::BucketInfo;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::{owner, timestamp, ufs, Gateway};

/// The only region a worker has.
const REGION: &str = "us-east-1";
/// AWS's largest ListBuckets page, also its page size once any paging parameter is given.
const MAX_BUCKETS: i32 = 10_000;

/// The opaque ListBuckets continuation token: the last bucket name of the page, base64url.
fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The bucket name a token continues after; a token this worker did not hand out is refused.
fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .filter(|name| validate_bucket_name(name).is_ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

/// What a ListBuckets request asks for: which buckets, from where, how many.
struct BucketQuery {
    prefix: String,
    after: Option<String>,
    /// `None`: every bucket in one answer (a request with no paging parameter, as before paging).
    page: Option<usize>,
    /// A `bucket-region` other than ours matches no bucket.
    other_region: bool,
}

impl BucketQuery {
    fn new(input: &ListBucketsInput) -> S3Result<Self> {
        if input.max_buckets.is_some_and(|n| !(1..=MAX_BUCKETS).contains(&n)) {
            return Err(s3_error!(InvalidArgument, "Argument max-buckets must be an integer between 1 and 10000."));
        }
        let after = input.continuation_token.as_deref().filter(|t| !t.is_empty()).map(decode_token).transpose()?;
        let paged = input.max_buckets.is_some()
            || input.continuation_token.is_some()
            || input.prefix.is_some()
            || input.bucket_region.is_some();
        Ok(Self {
            prefix: input.prefix.clone().unwrap_or_default(),
            after,
            page: paged.then(|| input.max_buckets.unwrap_or(MAX_BUCKETS) as usize),
            other_region: input.bucket_region.as_deref().is_some_and(|r| r != REGION),
        })
    }

    /// One page of `all` (in name order) and the token for the next one, if any is left.
    fn page(&self, all: Vec<BucketInfo>) -> (Vec<BucketInfo>, Option<String>) {
        let mut chosen = all
            .into_iter()
            .filter(|b| !self.other_region && b.name.starts_with(&self.prefix))
            .filter(|b| self.after.as_ref().is_none_or(|after| b.name > *after));
        let Some(size) = self.page else { return (chosen.collect(), None) };
        let listed: Vec<BucketInfo> = chosen.by_ref().take(size).collect();
        let more = chosen.next().is_some();
        let token = listed.last().filter(|_| more).map(|b| encode_token(&b.name));
        (listed, token)
    }
}

pub async fn list_buckets(gw: &Gateway, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let query = BucketQuery::new(&req.input)?;
    // With policies, a user sees the buckets they have been granted something in.
    let mut all = ufs(gw.objects.buckets())?;
    if let Some(authorizer) = req.extensions.get::<Authorizer>() {
        all.retain(|b| authorizer.sees_bucket(&b.name));
    }
    let (listed, continuation_token) = query.page(all);
    let buckets = listed
        .into_iter()
        .map(|b| Bucket { name: Some(b.name), creation_date: Some(timestamp(b.created)), bucket_region: None })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        continuation_token,
        prefix: req.input.prefix,
    }))
}

pub async fn head_bucket(gw: &Gateway, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    gw.bucket(&req.input.bucket)?;
    Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(REGION.into()), ..Default::default() }))
}

pub async fn create_bucket(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let name = req.input.bucket;
    ufs(gw.objects.create_bucket(&name))?;
    Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
}

pub async fn delete_bucket(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    ufs(gw.objects.delete_bucket(&req.input.bucket))?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn get_bucket_location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    gw.bucket(&req.input.bucket)?;
    // us-east-1 is reported as an empty LocationConstraint, as AWS does.
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint: None }))
}

/// A bucket that never had versioning: no Status element.
pub async fn get_bucket_versioning(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    gw.bucket(&req.input.bucket)?;
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn buckets(names: &[&str]) -> Vec<BucketInfo> {
        names.iter().map(|n| BucketInfo { name: n.to_string(), created: OffsetDateTime::UNIX_EPOCH }).collect()
    }

    fn names(page: &[BucketInfo]) -> Vec<&str> {
        page.iter().map(|b| b.name.as_str()).collect()
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_token(&encode_token("my.bucket-1")).unwrap(), "my.bucket-1");
        for bad in ["not base64!", "QQ", "L2V0Yy9wYXNzd2Q", "%%%"] {
            assert!(decode_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_follow_the_token_and_the_prefix() {
        let all = buckets(&["alpha", "beta", "bravo", "charlie"]);
        let input = ListBucketsInput { max_buckets: Some(2), ..Default::default() };
        let (first, token) = BucketQuery::new(&input).unwrap().page(all.clone());
        assert_eq!(names(&first), ["alpha", "beta"]);
        let input = ListBucketsInput { max_buckets: Some(2), continuation_token: token, ..Default::default() };
        let (second, token) = BucketQuery::new(&input).unwrap().page(all.clone());
        assert_eq!((names(&second), token), (vec!["bravo", "charlie"], None), "the last page has no token");

        let input = ListBucketsInput { prefix: Some("b".into()), max_buckets: Some(1), ..Default::default() };
        let (page, token) = BucketQuery::new(&input).unwrap().page(all.clone());
        assert_eq!(names(&page), ["beta"]);
        assert!(token.is_some());
        let (page, _) = BucketQuery::new(&ListBucketsInput::default()).unwrap().page(all.clone());
        assert_eq!(page.len(), 4, "no paging parameter: everything");
        let input = ListBucketsInput { bucket_region: Some("eu-west-1".into()), ..Default::default() };
        assert!(BucketQuery::new(&input).unwrap().page(all).0.is_empty());
    }

    #[test]
    fn max_buckets_is_bounded() {
        for n in [0, -1, 10_001] {
            let input = ListBucketsInput { max_buckets: Some(n), ..Default::default() };
            assert!(BucketQuery::new(&input).is_err(), "{n}");
        }
    }
}
