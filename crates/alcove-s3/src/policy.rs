//! Authorization: who may do what.
//!
//! `[[auth.policies]]` grants users (access keys, simple-mode user names, OIDC users) and groups
//! (from an OIDC claim) the actions `read`, `write` and `list` on resources: a bucket (`photos`,
//! the bucket itself and every key in it), keys (`photos/2024/*`: every key that starts with
//! `2024/`; `photos/cat.jpg`: that key only), or everything (`*`). A bucket name may end in `*`
//! too (`team-*`). The user `*` is everyone, anonymous requests included; `anonymous` is the
//! user of requests without credentials.
//!
//! [`PolicyAccess`] is the access check s3s runs before every operation: it maps the operation to
//! what it needs ([`need`]) and refuses what no grant allows with `AccessDenied`, logging user,
//! action, bucket and key. It leaves an [`Authorizer`] in the request for the checks only the
//! gateway can make (each key of DeleteObjects, the buckets ListBuckets shows). Without any
//! policy every identity may do everything.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use http::Extensions;
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};

use crate::auth::{anonymous_denied, query_param};

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Reading objects and bucket settings.
    Read,
    /// Creating, changing and deleting objects, uploads, buckets and bucket settings.
    Write,
    /// Listing keys and uploads.
    List,
}

impl FromStr for Action {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "list" => Ok(Self::List),
            _ => Err(PolicyError::Action(s.to_owned())),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::List => "list",
        })
    }
}

/// Why a policy in the configuration cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("'{0}' is not an action: use \"read\", \"write\" or \"list\"")]
    Action(String),
    #[error("'{resource}' is not a resource: {why}")]
    Resource { resource: String, why: &'static str },
    #[error("a policy names nobody: give it users, groups or both")]
    Nobody,
    #[error("a policy needs at least one action and one resource")]
    Empty,
    #[error("'{0}' is not a user or group name: it is empty or has a '*' that is not the whole name")]
    Name(String),
}

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key, the simple-mode user name, the OIDC user, or [`Identity::ANONYMOUS`].
    pub user: String,
    /// OIDC groups.
    pub groups: Vec<String>,
    /// The request carried no credentials.
    pub anonymous: bool,
}

impl Identity {
    /// The user name of requests without credentials.
    pub const ANONYMOUS: &'static str = "anonymous";

    pub fn anonymous() -> Self {
        Self { user: Self::ANONYMOUS.to_owned(), groups: Vec::new(), anonymous: true }
    }

    pub fn user(name: impl Into<String>) -> Self {
        Self { user: name.into(), groups: Vec::new(), anonymous: false }
    }
}

/// A bucket or key pattern: an exact name, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    prefix: bool,
}

impl Pattern {
    fn parse(text: &str) -> Option<Self> {
        let (text, prefix) = match text.strip_suffix('*') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        (!text.contains('*')).then(|| Self { text: text.to_owned(), prefix })
    }

    fn matches(&self, s: &str) -> bool {
        if self.prefix {
            s.starts_with(&self.text)
        } else {
            s == self.text
        }
    }

    /// Whether every name that starts with `prefix` matches.
    fn covers_prefix(&self, prefix: &str) -> bool {
        self.prefix && prefix.starts_with(&self.text)
    }
}

/// What a grant is on: buckets, and optionally only some of their keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    bucket: Pattern,
    /// `None`: the bucket itself and every key in it.
    key: Option<Pattern>,
}

impl FromStr for Resource {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let bad = |why| PolicyError::Resource { resource: s.to_owned(), why };
        let (bucket, key) = match s.split_once('/') {
            Some((bucket, key)) => (bucket, Some(key)),
            None => (s, None),
        };
        let bucket_chars = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.*".contains(c);
        if bucket.is_empty() || !bucket.chars().all(bucket_chars) {
            return Err(bad("a resource starts with a bucket name (lowercase letters, digits, '-', '.'), or is '*'"));
        }
        let bucket = Pattern::parse(bucket).ok_or_else(|| bad("a '*' may only end the bucket name"))?;
        let key = match key {
            None => None,
            Some("") => return Err(bad("write \"bucket\" for a whole bucket, or \"bucket/prefix*\" for keys")),
            Some(key) => Some(Pattern::parse(key).ok_or_else(|| bad("a '*' may only end the key"))?),
        };
        Ok(Self { bucket, key })
    }
}

/// What a request touches, for matching against resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The bucket itself (its settings, creating or deleting it).
    Bucket(&'a str),
    /// One key.
    Key(&'a str, &'a str),
    /// Listing the keys of a bucket that start with a prefix.
    Listing(&'a str, &'a str),
    /// Something somewhere in the bucket.
    AnythingIn(&'a str),
    /// Every bucket (operations that name none).
    Everything,
}

impl Resource {
    fn matches(&self, target: Target<'_>) -> bool {
        match target {
            Target::Bucket(b) => self.bucket.matches(b) && self.key.is_none(),
            Target::Key(b, k) => self.bucket.matches(b) && self.key.as_ref().is_none_or(|p| p.matches(k)),
            Target::Listing(b, prefix) => {
                self.bucket.matches(b) && self.key.as_ref().is_none_or(|p| p.covers_prefix(prefix))
            }
            Target::AnythingIn(b) => self.bucket.matches(b),
            Target::Everything => self.bucket.covers_prefix("") && self.key.is_none(),
        }
    }
}

/// One `[[auth.policies]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    users: Vec<String>,
    groups: Vec<String>,
    actions: Vec<Action>,
    resources: Vec<Resource>,
}

impl Grant {
    pub fn new(
        users: &[String],
        groups: &[String],
        actions: &[String],
        resources: &[String],
    ) -> Result<Self, PolicyError> {
        if users.is_empty() && groups.is_empty() {
            return Err(PolicyError::Nobody);
        }
        if actions.is_empty() || resources.is_empty() {
            return Err(PolicyError::Empty);
        }
        for name in users.iter().chain(groups) {
            if name.trim().is_empty() || (name.contains('*') && name != "*") {
                return Err(PolicyError::Name(name.clone()));
            }
        }
        Ok(Self {
            users: users.to_vec(),
            groups: groups.to_vec(),
            actions: actions.iter().map(|a| a.parse()).collect::<Result<_, _>>()?,
            resources: resources.iter().map(|r| r.parse()).collect::<Result<_, _>>()?,
        })
    }

    /// Whether the grant names the groups of OIDC tokens.
    pub fn names_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    fn applies_to(&self, who: &Identity) -> bool {
        self.users.iter().any(|u| u == "*" || *u == who.user) || self.groups.iter().any(|g| who.groups.contains(g))
    }
}

/// Every grant of the configuration. Empty: everything is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    grants: Vec<Grant>,
}

impl Policies {
    pub fn new(grants: Vec<Grant>) -> Self {
        Self { grants }
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Whether `who` may do `action` on `target`.
    pub fn allows(&self, who: &Identity, action: Action, target: Target<'_>) -> bool {
        self.is_empty()
            || self.grants.iter().any(|g| {
                g.applies_to(who) && g.actions.contains(&action) && g.resources.iter().any(|r| r.matches(target))
            })
    }

    /// Whether `who` has been granted anything in `bucket` (ListBuckets shows only those).
    pub fn sees_bucket(&self, who: &Identity, bucket: &str) -> bool {
        self.is_empty()
            || self
                .grants
                .iter()
                .any(|g| g.applies_to(who) && g.resources.iter().any(|r| r.matches(Target::AnythingIn(bucket))))
    }
}

/// What an operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need<'a> {
    /// Nothing (ListBuckets: its answer shows only the buckets the user has grants in).
    Nothing,
    /// `action` on a target.
    Do(Action, Target<'a>),
    /// Any grant in the bucket (HeadBucket, GetBucketLocation: what clients ask before they work).
    AnyIn(&'a str),
    /// Write on each key, checked by the gateway, key by key (DeleteObjects).
    EachKey,
}

/// How an operation is classed (before knowing what it names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Plain(Action),
    AnyGrant,
    EachKey,
    ListBuckets,
}

/// The class of every operation s3s knows (`None`: a name it does not, which then needs write on
/// what it names).
fn class(op: &str) -> Option<Class> {
    use Action::*;
    Some(match op {
        "ListBuckets" | "ListDirectoryBuckets" => Class::ListBuckets,
        "HeadBucket" | "GetBucketLocation" => Class::AnyGrant,
        "DeleteObjects" => Class::EachKey,
        "ListObjects" | "ListObjectsV2" | "ListObjectVersions" | "ListMultipartUploads" => Class::Plain(List),
        "GetObject"
        | "HeadObject"
        | "GetObjectAttributes"
        | "GetObjectTagging"
        | "GetObjectAcl"
        | "GetObjectLegalHold"
        | "GetObjectRetention"
        | "GetObjectTorrent"
        | "GetObjectLockConfiguration"
        | "SelectObjectContent"
        | "GetBucketAccelerateConfiguration"
        | "GetBucketAcl"
        | "GetBucketAnalyticsConfiguration"
        | "GetBucketCors"
        | "GetBucketEncryption"
        | "GetBucketIntelligentTieringConfiguration"
        | "GetBucketInventoryConfiguration"
        | "GetBucketLifecycleConfiguration"
        | "GetBucketLogging"
        | "GetBucketMetadataTableConfiguration"
        | "GetBucketMetricsConfiguration"
        | "GetBucketNotificationConfiguration"
        | "GetBucketOwnershipControls"
        | "GetBucketPolicy"
        | "GetBucketPolicyStatus"
        | "GetBucketReplication"
        | "GetBucketRequestPayment"
        | "GetBucketTagging"
        | "GetBucketVersioning"
        | "GetBucketWebsite"
        | "GetPublicAccessBlock"
        | "ListBucketAnalyticsConfigurations"
        | "ListBucketIntelligentTieringConfigurations"
        | "ListBucketInventoryConfigurations"
        | "ListBucketMetricsConfigurations" => Class::Plain(Read),
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "DeleteObject"
        | "RestoreObject"
        | "WriteGetObjectResponse"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts"
        | "PutObjectTagging"
        | "DeleteObjectTagging"
        | "PutObjectAcl"
        | "PutObjectLegalHold"
        | "PutObjectRetention"
        | "PutObjectLockConfiguration"
        | "CreateBucket"
        | "DeleteBucket"
        | "CreateSession"
        | "CreateBucketMetadataTableConfiguration"
        | "DeleteBucketAnalyticsConfiguration"
        | "DeleteBucketCors"
        | "DeleteBucketEncryption"
        | "DeleteBucketIntelligentTieringConfiguration"
        | "DeleteBucketInventoryConfiguration"
        | "DeleteBucketLifecycle"
        | "DeleteBucketMetadataTableConfiguration"
        | "DeleteBucketMetricsConfiguration"
        | "DeleteBucketOwnershipControls"
        | "DeleteBucketPolicy"
        | "DeleteBucketReplication"
        | "DeleteBucketTagging"
        | "DeleteBucketWebsite"
        | "DeletePublicAccessBlock"
        | "PutBucketAccelerateConfiguration"
        | "PutBucketAcl"
        | "PutBucketAnalyticsConfiguration"
        | "PutBucketCors"
        | "PutBucketEncryption"
        | "PutBucketIntelligentTieringConfiguration"
        | "PutBucketInventoryConfiguration"
        | "PutBucketLifecycleConfiguration"
        | "PutBucketLogging"
        | "PutBucketMetricsConfiguration"
        | "PutBucketNotificationConfiguration"
        | "PutBucketOwnershipControls"
        | "PutBucketPolicy"
        | "PutBucketReplication"
        | "PutBucketRequestPayment"
        | "PutBucketTagging"
        | "PutBucketVersioning"
        | "PutBucketWebsite"
        | "PutPublicAccessBlock" => Class::Plain(Write),
        _ => return None,
    })
}

/// What operation `op` on `path` needs; `prefix` is a listing's `prefix` parameter.
pub fn need<'a>(op: &str, path: &'a S3Path, prefix: &'a str) -> Need<'a> {
    let class = class(op).unwrap_or(Class::Plain(Action::Write));
    let (bucket, key) = match path {
        S3Path::Root => {
            return match class {
                Class::ListBuckets => Need::Nothing,
                Class::Plain(action) => Need::Do(action, Target::Everything),
                Class::AnyGrant | Class::EachKey => Need::Do(Action::Write, Target::Everything),
            };
        }
        S3Path::Bucket { bucket } => (&**bucket, None),
        S3Path::Object { bucket, key } => (&**bucket, Some(&**key)),
    };
    match (class, key) {
        (Class::ListBuckets, _) => Need::Nothing,
        (Class::AnyGrant, _) => Need::AnyIn(bucket),
        (Class::EachKey, _) => Need::EachKey,
        (Class::Plain(Action::List), _) => Need::Do(Action::List, Target::Listing(bucket, prefix)),
        (Class::Plain(action), Some(key)) => Need::Do(action, Target::Key(bucket, key)),
        (Class::Plain(action), None) => Need::Do(action, Target::Bucket(bucket)),
    }
}

/// Left in a request by the access check: who it runs as, and the grants, for the checks the
/// gateway makes itself.
#[derive(Debug, Clone)]
pub struct Authorizer {
    pub identity: Identity,
    policies: Arc<Policies>,
}

impl Authorizer {
    pub fn new(identity: Identity, policies: Arc<Policies>) -> Self {
        Self { identity, policies }
    }

    pub fn allows(&self, action: Action, target: Target<'_>) -> bool {
        self.policies.allows(&self.identity, action, target)
    }

    /// `Ok` when allowed; otherwise logs the refusal and answers `AccessDenied`.
    pub fn require(&self, op: &str, action: Action, target: Target<'_>) -> S3Result<()> {
        if self.allows(action, target) {
            return Ok(());
        }
        Err(self.denied(op, action, target))
    }

    /// Whether the user may delete `key` (DeleteObjects); a refusal is logged.
    pub fn may_delete(&self, bucket: &str, key: &str) -> bool {
        let target = Target::Key(bucket, key);
        let allowed = self.allows(Action::Write, target);
        if !allowed {
            self.log_denied("DeleteObjects", Action::Write, target);
        }
        allowed
    }

    /// Whether ListBuckets shows `bucket` to the user.
    pub fn sees_bucket(&self, bucket: &str) -> bool {
        self.policies.sees_bucket(&self.identity, bucket)
    }

    /// The refusal of `action` on `target`, logged.
    pub fn denied(&self, op: &str, action: Action, target: Target<'_>) -> S3Error {
        self.log_denied(op, action, target);
        let what = match target {
            Target::Bucket(b) => format!("the bucket {b}"),
            Target::Key(b, k) => format!("{b}/{k}"),
            Target::Listing(b, "") => format!("the keys of {b}"),
            Target::Listing(b, p) => format!("the keys of {b} under '{p}'"),
            Target::AnythingIn(b) => format!("anything in {b}"),
            Target::Everything => "every bucket".to_owned(),
        };
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!("Access Denied: user '{}' may not {action} {what}.", self.identity.user),
        )
    }

    fn log_denied(&self, op: &str, action: Action, target: Target<'_>) {
        let (bucket, key) = match target {
            Target::Bucket(b) | Target::AnythingIn(b) => (b, ""),
            Target::Key(b, k) | Target::Listing(b, k) => (b, k),
            Target::Everything => ("", ""),
        };
        tracing::warn!(user = %self.identity.user, %action, bucket, key, operation = op, "access denied");
    }
}

/// A slot the front end puts in a request to learn who the access check found it runs as (for
/// the access log: a temporary access key says less than the user behind it).
#[derive(Debug, Clone, Default)]
pub struct ResolvedUser(pub Arc<OnceLock<String>>);

/// A slot the front end puts in a request to learn which S3 action s3s routed it to (for the
/// access log and the per-action metrics).
#[derive(Debug, Clone, Default)]
pub struct ResolvedAction(pub Arc<OnceLock<String>>);

/// How the access check learns the identity behind a verified access key.
pub trait KeyIdentities: Send + Sync + 'static {
    /// The identity of a request signed with `access_key`; the headers and URI carry anything
    /// else the key needs (a session token).
    fn identity(&self, access_key: &str, headers: &http::HeaderMap, uri: &http::Uri) -> S3Result<Identity>;
}

/// The policies in force; SIGHUP swaps in new ones while requests read them.
pub type LivePolicies = Arc<arc_swap::ArcSwap<Policies>>;

/// `policies`, ready to be replaced later.
pub fn live_policies(policies: Arc<Policies>) -> LivePolicies {
    Arc::new(arc_swap::ArcSwap::new(policies))
}

/// s3s's access check: anonymous access, then the policies.
pub struct PolicyAccess {
    pub policies: LivePolicies,
    pub allow_anonymous: bool,
    pub keys: Arc<dyn KeyIdentities>,
}

impl PolicyAccess {
    /// Who the request runs as: the verified access key's identity, else the one the front end
    /// found (simple mode, a bearer token), else anonymous.
    fn identity(&self, cx: &mut S3AccessContext<'_>) -> S3Result<Identity> {
        if let Some(credentials) = cx.credentials() {
            return self.keys.identity(&credentials.access_key, cx.headers(), cx.uri());
        }
        Ok(cx.extensions_mut().get::<Identity>().cloned().unwrap_or_else(Identity::anonymous))
    }

    /// The source of a copy needs read.
    fn check_copy_source(&self, extensions: &Extensions, source: &CopySource, op: &str) -> S3Result<()> {
        let (Some(authorizer), CopySource::Bucket { bucket, key, .. }) = (extensions.get::<Authorizer>(), source)
        else {
            return Ok(());
        };
        authorizer.require(op, Action::Read, Target::Key(bucket, key))
    }
}

#[async_trait::async_trait]
impl S3Access for PolicyAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<ResolvedAction>() {
            let _ = slot.0.set(op.clone());
        }
        let op = op.as_str();
        let identity = self.identity(cx)?;
        if identity.anonymous && !self.allow_anonymous {
            return Err(anonymous_denied());
        }
        // An anonymous request keeps the name the front end gave it (the worker's process user).
        if let Some(slot) = cx.extensions_mut().get::<ResolvedUser>().filter(|_| !identity.anonymous) {
            let _ = slot.0.set(identity.user.clone());
        }
        let authorizer = Authorizer::new(identity, self.policies.load_full());
        let prefix = cx.uri().query().and_then(|q| query_param(q, "prefix")).unwrap_or_default();
        let result = match need(op, cx.s3_path(), &prefix) {
            Need::Nothing | Need::EachKey => Ok(()),
            Need::Do(action, target) => authorizer.require(op, action, target),
            Need::AnyIn(bucket) => {
                if authorizer.sees_bucket(bucket) {
                    Ok(())
                } else {
                    Err(authorizer.denied(op, Action::Read, Target::AnythingIn(bucket)))
                }
            }
        };
        cx.extensions_mut().insert(authorizer);
        result
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(&req.extensions, &req.input.copy_source, "CopyObject")
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(&req.extensions, &req.input.copy_source, "UploadPartCopy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(users: &[&str], groups: &[&str], actions: &[&str], resources: &[&str]) -> Grant {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Grant::new(&s(users), &s(groups), &s(actions), &s(resources)).unwrap()
    }

    fn path(bucket: &str, key: Option<&str>) -> S3Path {
        match key {
            None if bucket.is_empty() => S3Path::Root,
            None => S3Path::Bucket { bucket: bucket.into() },
            Some(k) => S3Path::Object { bucket: bucket.into(), key: k.into() },
        }
    }

    #[test]
    fn resources_say_exactly_what_they_cover() {
        let r = |s: &str| s.parse::<Resource>().unwrap();
        let whole = r("photos");
        assert!(whole.matches(Target::Bucket("photos")));
        assert!(whole.matches(Target::Key("photos", "a/b")));
        assert!(whole.matches(Target::Listing("photos", "")));
        assert!(!whole.matches(Target::Key("photos2", "a")));
        assert!(!whole.matches(Target::Everything));

        let prefix = r("photos/2024/*");
        assert!(prefix.matches(Target::Key("photos", "2024/cat.jpg")));
        assert!(!prefix.matches(Target::Key("photos", "2023/cat.jpg")));
        assert!(!prefix.matches(Target::Bucket("photos")), "keys only, not the bucket's settings");
        assert!(prefix.matches(Target::Listing("photos", "2024/")));
        assert!(prefix.matches(Target::Listing("photos", "2024/jan")));
        assert!(!prefix.matches(Target::Listing("photos", "")), "a listing of everything shows more");
        assert!(!prefix.matches(Target::Listing("photos", "2024")), "'2024' also lists '2024x/…'");
        assert!(prefix.matches(Target::AnythingIn("photos")));

        let exact = r("photos/cat.jpg");
        assert!(exact.matches(Target::Key("photos", "cat.jpg")));
        assert!(!exact.matches(Target::Key("photos", "cat.jpg2")));
        assert!(!exact.matches(Target::Listing("photos", "cat.jpg")));

        let team = r("team-*");
        assert!(team.matches(Target::Bucket("team-a")) && team.matches(Target::Key("team-b", "k")));
        assert!(!team.matches(Target::Bucket("teams")));

        let all = r("*");
        assert!(all.matches(Target::Everything) && all.matches(Target::Bucket("x")));
        assert!(all.matches(Target::Key("x", "y")));

        for bad in ["", "/k", "Photos", "pho*tos", "photos/", "photos/a*b", "a b"] {
            assert!(bad.parse::<Resource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_match_users_groups_and_everyone() {
        let policies = Policies::new(vec![
            grant(&["alice"], &[], &["read", "list"], &["photos"]),
            grant(&[], &["editors"], &["write"], &["photos/drafts/*"]),
            grant(&["*"], &[], &["read"], &["public"]),
        ]);
        let alice = Identity::user("alice");
        let bob = Identity { groups: vec!["editors".into()], ..Identity::user("bob") };
        let anon = Identity::anonymous();
        assert!(policies.allows(&alice, Action::Read, Target::Key("photos", "x")));
        assert!(!policies.allows(&alice, Action::Write, Target::Key("photos", "x")));
        assert!(policies.allows(&bob, Action::Write, Target::Key("photos", "drafts/x")));
        assert!(!policies.allows(&bob, Action::Read, Target::Key("photos", "drafts/x")));
        for who in [&alice, &bob, &anon] {
            assert!(policies.allows(who, Action::Read, Target::Key("public", "k")));
            assert!(!policies.allows(who, Action::Write, Target::Key("public", "k")));
        }
        assert!(policies.sees_bucket(&bob, "photos") && policies.sees_bucket(&anon, "public"));
        assert!(!policies.sees_bucket(&anon, "photos"));
        assert!(Policies::default().allows(&anon, Action::Write, Target::Everything), "no policies: all");
    }

    #[test]
    fn bad_grants_are_refused() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let new = |u: &[&str], g: &[&str], a: &[&str], r: &[&str]| Grant::new(&s(u), &s(g), &s(a), &s(r));
        assert_eq!(new(&[], &[], &["read"], &["b"]), Err(PolicyError::Nobody));
        assert_eq!(new(&["a"], &[], &[], &["b"]), Err(PolicyError::Empty));
        assert_eq!(new(&["a"], &[], &["delete"], &["b"]), Err(PolicyError::Action("delete".into())));
        assert_eq!(new(&["a*"], &[], &["read"], &["b"]), Err(PolicyError::Name("a*".into())));
        assert!(new(&["a"], &[], &["READ"], &["b"]).is_ok(), "actions ignore case");
    }

    /// Every operation of s3s 0.14 has a class (none falls back to "write on everything").
    #[test]
    fn every_operation_is_classed() {
        let ops = "AbortMultipartUpload CompleteMultipartUpload CopyObject CreateBucket CreateBucketMetadataTableConfiguration \
            CreateMultipartUpload CreateSession DeleteBucket DeleteBucketAnalyticsConfiguration DeleteBucketCors \
            DeleteBucketEncryption DeleteBucketIntelligentTieringConfiguration DeleteBucketInventoryConfiguration \
            DeleteBucketLifecycle DeleteBucketMetadataTableConfiguration DeleteBucketMetricsConfiguration \
            DeleteBucketOwnershipControls DeleteBucketPolicy DeleteBucketReplication DeleteBucketTagging \
            DeleteBucketWebsite DeleteObject DeleteObjectTagging DeleteObjects DeletePublicAccessBlock \
            GetBucketAccelerateConfiguration GetBucketAcl GetBucketAnalyticsConfiguration GetBucketCors \
            GetBucketEncryption GetBucketIntelligentTieringConfiguration GetBucketInventoryConfiguration \
            GetBucketLifecycleConfiguration GetBucketLocation GetBucketLogging GetBucketMetadataTableConfiguration \
            GetBucketMetricsConfiguration GetBucketNotificationConfiguration GetBucketOwnershipControls \
            GetBucketPolicy GetBucketPolicyStatus GetBucketReplication GetBucketRequestPayment GetBucketTagging \
            GetBucketVersioning GetBucketWebsite GetObject GetObjectAcl GetObjectAttributes GetObjectLegalHold \
            GetObjectLockConfiguration GetObjectRetention GetObjectTagging GetObjectTorrent GetPublicAccessBlock \
            HeadBucket HeadObject ListBucketAnalyticsConfigurations ListBucketIntelligentTieringConfigurations \
            ListBucketInventoryConfigurations ListBucketMetricsConfigurations ListBuckets ListDirectoryBuckets \
            ListMultipartUploads ListObjectVersions ListObjects ListObjectsV2 ListParts PostObject \
            PutBucketAccelerateConfiguration PutBucketAcl PutBucketAnalyticsConfiguration PutBucketCors \
            PutBucketEncryption PutBucketIntelligentTieringConfiguration PutBucketInventoryConfiguration \
            PutBucketLifecycleConfiguration PutBucketLogging PutBucketMetricsConfiguration \
            PutBucketNotificationConfiguration PutBucketOwnershipControls PutBucketPolicy PutBucketReplication \
            PutBucketRequestPayment PutBucketTagging PutBucketVersioning PutBucketWebsite PutObject PutObjectAcl \
            PutObjectLegalHold PutObjectLockConfiguration PutObjectRetention PutObjectTagging PutPublicAccessBlock \
            RestoreObject SelectObjectContent UploadPart UploadPartCopy WriteGetObjectResponse";
        let unclassed: Vec<&str> = ops.split_whitespace().filter(|op| class(op).is_none()).collect();
        assert!(unclassed.is_empty(), "{unclassed:?}");
        assert_eq!(ops.split_whitespace().count(), 99, "the operations of s3s 0.14");
    }

    #[test]
    fn operations_need_what_aws_users_expect() {
        let obj = path("photos", Some("2024/cat.jpg"));
        let bucket = path("photos", None);
        let root = path("", None);
        assert_eq!(need("GetObject", &obj, ""), Need::Do(Action::Read, Target::Key("photos", "2024/cat.jpg")));
        assert_eq!(need("PutObject", &obj, ""), Need::Do(Action::Write, Target::Key("photos", "2024/cat.jpg")));
        assert_eq!(need("ListParts", &obj, ""), Need::Do(Action::Write, Target::Key("photos", "2024/cat.jpg")));
        assert_eq!(need("ListObjectsV2", &bucket, "2024/"), Need::Do(Action::List, Target::Listing("photos", "2024/")));
        assert_eq!(need("PutBucketCors", &bucket, ""), Need::Do(Action::Write, Target::Bucket("photos")));
        assert_eq!(need("GetBucketTagging", &bucket, ""), Need::Do(Action::Read, Target::Bucket("photos")));
        assert_eq!(need("CreateBucket", &bucket, ""), Need::Do(Action::Write, Target::Bucket("photos")));
        assert_eq!(need("HeadBucket", &bucket, ""), Need::AnyIn("photos"));
        assert_eq!(need("DeleteObjects", &bucket, ""), Need::EachKey);
        assert_eq!(need("ListBuckets", &root, ""), Need::Nothing);
        assert_eq!(need("WriteGetObjectResponse", &root, ""), Need::Do(Action::Write, Target::Everything));
        assert_eq!(need("SomethingNew", &obj, ""), Need::Do(Action::Write, Target::Key("photos", "2024/cat.jpg")));
    }
}
