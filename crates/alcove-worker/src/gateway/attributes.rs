//! GetObjectAttributes: what HeadObject and ListParts tell of an object, in one answer — ETag,
//! checksum, the parts of a multipart object with their checksums, storage class and size, as
//! `x-amz-object-attributes` selects. It reads stored metadata only and may not open object data.
//! AWS answers this action's ETag unquoted; s3s always quotes ETags, so the front end strips them.

use alcove_s3::checksum::ChecksumAlgorithm;
use alcove_ufs::ObjectMeta;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::multipart::without_part_count;
use super::object_meta::set_checksum;
use super::{check_version, etag, object_key, timestamp, ufs, Gateway};

/// Parts listed when `x-amz-max-parts` is absent, and the most listed at once (as ListParts).
const MAX_PARTS: i32 = 1000;

/// The attributes a request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Selected {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

/// `x-amz-object-attributes`: one header of comma-separated names (as SDKs send it), or several.
fn selected(list: &[ObjectAttributes]) -> S3Result<Selected> {
    let mut want = Selected::default();
    for name in list.iter().flat_map(|a| a.as_str().split(',')).map(str::trim) {
        let flag = match name {
            ObjectAttributes::ETAG => &mut want.etag,
            ObjectAttributes::CHECKSUM => &mut want.checksum,
            ObjectAttributes::OBJECT_PARTS => &mut want.parts,
            ObjectAttributes::STORAGE_CLASS => &mut want.storage_class,
            ObjectAttributes::OBJECT_SIZE => &mut want.size,
            _ => return Err(s3_error!(InvalidArgument, "Invalid attribute name specified.")),
        };
        *flag = true;
    }
    Ok(want)
}

/// Which page of ObjectParts a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartsPage {
    /// List parts after this number.
    marker: i32,
    max: i32,
}

impl PartsPage {
    fn new(max_parts: Option<i32>, marker: Option<i32>) -> S3Result<Self> {
        let max = max_parts.unwrap_or(MAX_PARTS);
        if max < 0 {
            return Err(s3_error!(InvalidArgument, "Argument max-parts must be an integer between 0 and 2147483647"));
        }
        let marker = marker.unwrap_or(0);
        if marker < 0 {
            return Err(s3_error!(
                InvalidArgument,
                "Argument part-number-marker must be an integer between 0 and 2147483647"
            ));
        }
        Ok(Self { marker, max: max.min(MAX_PARTS) })
    }

    /// ObjectParts of a multipart object (`None` for any other). AWS lists the parts themselves
    /// only for objects uploaded with checksums; otherwise it gives just their count.
    fn of(self, meta: &ObjectMeta) -> Option<GetObjectAttributesParts> {
        if meta.parts.is_empty() {
            return None;
        }
        let mut out =
            GetObjectAttributesParts { total_parts_count: Some(meta.parts.len() as i32), ..Default::default() };
        let algorithm = meta.checksum.as_ref().and_then(|c| ChecksumAlgorithm::from_name(&c.algorithm));
        let (Some(algorithm), true) = (algorithm, meta.part_checksums.len() == meta.parts.len()) else {
            return Some(out);
        };
        let mut after =
            meta.parts.iter().zip(&meta.part_checksums).zip(1..).filter(|(_, number)| *number > self.marker).map(
                |((size, sum), number)| {
                    let mut part =
                        ObjectPart { part_number: Some(number), size: Some(*size as i64), ..Default::default() };
                    set_checksum!(part, algorithm, Some(sum.clone()));
                    part
                },
            );
        let listed: Vec<ObjectPart> = after.by_ref().take(self.max as usize).collect();
        out.is_truncated = Some(after.next().is_some());
        out.part_number_marker = Some(self.marker);
        out.next_part_number_marker = Some(listed.last().and_then(|p| p.part_number).unwrap_or(self.marker));
        out.max_parts = Some(self.max);
        out.parts = Some(listed);
        Some(out)
    }
}

/// The object's checksum; a composite one without the `-N` part count that HeadObject shows.
fn checksum(meta: &ObjectMeta) -> Option<Checksum> {
    let stored = meta.checksum.as_ref()?;
    let algorithm = ChecksumAlgorithm::from_name(&stored.algorithm)?;
    let mut out = Checksum { checksum_type: Some(ChecksumType::from(stored.kind.clone())), ..Default::default() };
    set_checksum!(out, algorithm, Some(without_part_count(&stored.value).to_owned()));
    Some(out)
}

pub async fn get_object_attributes(
    gw: &Gateway,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let input = &req.input;
    let key = object_key(&input.key)?;
    check_version(input.version_id.as_deref())?;
    let want = selected(&input.object_attributes)?;
    let page = PartsPage::new(input.max_parts, input.part_number_marker)?;
    let info = ufs(gw.bucket(&input.bucket)?.stat(&key).await)?;
    Ok(S3Response::new(GetObjectAttributesOutput {
        last_modified: Some(timestamp(info.last_modified)),
        e_tag: want.etag.then(|| etag(&info.etag)),
        checksum: want.checksum.then(|| checksum(&info.meta)).flatten(),
        object_parts: want.parts.then(|| page.of(&info.meta)).flatten(),
        storage_class: want.storage_class.then(|| StorageClass::from_static(StorageClass::STANDARD)),
        object_size: want.size.then_some(info.size as i64),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use alcove_ufs::StoredChecksum;

    use super::*;

    fn names(list: &[&str]) -> Vec<ObjectAttributes> {
        list.iter().map(|s| ObjectAttributes::from(s.to_string())).collect()
    }

    #[test]
    fn attribute_names_come_comma_separated_or_repeated() {
        let want = selected(&names(&["ETag, ObjectParts", "ObjectSize"])).unwrap();
        assert_eq!(want, Selected { etag: true, parts: true, size: true, ..Default::default() });
        assert!(selected(&names(&["ETag,Size"])).is_err(), "unknown names are refused");
        assert!(selected(&names(&[""])).is_err());
    }

    fn multipart(sums: &[&str]) -> ObjectMeta {
        ObjectMeta {
            checksum: Some(StoredChecksum {
                algorithm: "CRC32".into(),
                value: "AAAAAA==-3".into(),
                kind: "COMPOSITE".into(),
            }),
            parts: vec![5, 5, 2],
            part_checksums: sums.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn parts_are_paged_after_the_marker() {
        let meta = multipart(&["AQ==", "Ag==", "Aw=="]);
        let page = PartsPage::new(Some(1), Some(1)).unwrap().of(&meta).unwrap();
        assert_eq!(page.total_parts_count, Some(3));
        assert_eq!((page.part_number_marker, page.next_part_number_marker), (Some(1), Some(2)));
        assert_eq!((page.max_parts, page.is_truncated), (Some(1), Some(true)));
        let parts = page.parts.unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].part_number, parts[0].size), (Some(2), Some(5)));
        assert_eq!(parts[0].checksum_crc32.as_deref(), Some("Ag=="));
        let last = PartsPage::new(None, Some(2)).unwrap().of(&meta).unwrap();
        assert_eq!((last.is_truncated, last.next_part_number_marker), (Some(false), Some(3)));
        assert_eq!(last.max_parts, Some(MAX_PARTS));
    }

    #[test]
    fn without_part_checksums_only_the_count_is_given() {
        let page = PartsPage::new(None, None).unwrap().of(&multipart(&[])).unwrap();
        assert_eq!(page.total_parts_count, Some(3));
        assert_eq!((page.parts, page.is_truncated, page.max_parts), (None, None, None));
        assert!(PartsPage::new(None, None).unwrap().of(&ObjectMeta::default()).is_none(), "single part");
    }

    #[test]
    fn bad_paging_is_refused_and_large_pages_are_capped() {
        assert!(PartsPage::new(Some(-1), None).is_err());
        assert!(PartsPage::new(None, Some(-1)).is_err());
        assert_eq!(PartsPage::new(Some(5000), None).unwrap().max, MAX_PARTS);
    }

    #[test]
    fn composite_checksums_lose_their_part_count() {
        let c = checksum(&multipart(&[])).unwrap();
        assert_eq!(c.checksum_crc32.as_deref(), Some("AAAAAA=="));
        assert_eq!(c.checksum_type.as_ref().map(ChecksumType::as_str), Some("COMPOSITE"));
    }
}
