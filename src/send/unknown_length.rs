//! Bodies of unknown length (`Transfer-Encoding: chunked`, or h2 without `content-length`).
//! S3 wants a length for object data, so the proxy reads up to one part: a body that ends
//! there is sent with its length; a longer PutObject becomes a multipart upload streamed part
//! by part, so memory stays bounded by the part size whatever the object's size. With
//! `--checksum`, each part carries its checksum, and the upload is created for full-object
//! checksums of that algorithm, which CompleteMultipartUpload then checks for the whole object.
//! A body whose `Content-MD5` the proxy checks (`content_md5`) fails as it ends when the MD5
//! differs, while its last part is read: that part is never sent, and the upload is aborted,
//! never completed.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use crate::body::{full, ClientBodyError, ProxyBody};
use crate::respond::record::RequestRecord;
use crate::route::operation::Operation;
use crate::send::{Head, OutBody, SendError, Sender, Signer};
use crate::sign::budget::{Budget, OverBudget, Reserved};
use crate::sign::checksum::{self, Computed, Hasher};
use crate::sign::{Payload, SignError};
use crate::upstream::{read_answer, UpstreamError};
use crate::xml::{self, CompleteReply};

/// Size of the first parts; it doubles every 1000 parts up to [`MAX_PART`], so the 10,000
/// parts S3 allows hold about 500 GiB.
pub const FIRST_PART: usize = 8 * 1024 * 1024;
const MAX_PART: usize = 64 * 1024 * 1024;

/// Why a body of unknown length was not sent (`error` says what the client sees of each).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Holding the part would pass `--max-buffered-bytes`.
    #[error(transparent)]
    Busy(#[from] OverBudget),
    /// The client's body broke off, or needs a length it does not have.
    #[error(transparent)]
    ClientBody(#[from] ClientBodyError),
    /// A request of the upload could not be signed; it was not sent.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// A request of the upload got no answer from S3 that could be relayed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// S3 answered in a way the upload cannot go on from.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

fn part_size(number: usize) -> usize {
    (FIRST_PART << ((number - 1) / 1000).min(3)).min(MAX_PART)
}

/// Reads a body in parts of a chosen size, carrying over what a frame brings past the end;
/// what it holds (the part in flight and the carry) is held against the budget.
struct PartReader {
    body: ProxyBody,
    carry: BytesMut,
    ended: bool,
    held: Reserved,
}

impl PartReader {
    /// The next part of at most `size` bytes, and whether the body has ended with it. The part
    /// before it must have been sent (its bytes go back to the budget now).
    async fn next(&mut self, size: usize) -> Result<(Bytes, bool), UploadError> {
        self.held.shrink_to(self.carry.len() as u64);
        while self.carry.len() < size && !self.ended {
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => return Err(ClientBodyError::Read(e).into()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.held.grow(data.len() as u64)?;
                        self.carry.extend_from_slice(&data);
                    }
                }
            }
        }
        let take = self.carry.len().min(size);
        let part = self.carry.split_to(take).freeze();
        Ok((part, self.ended && self.carry.is_empty()))
    }
}

/// A request whose body has no declared length.
pub struct Upload<'a> {
    sender: &'a Sender,
    budget: &'a Budget,
    signer: Signer,
    checksum: Option<Computed>,
}

impl<'a> Upload<'a> {
    /// An upload sent through `sender`, holding its parts against `budget`.
    pub fn new(sender: &'a Sender, budget: &'a Budget, signer: Signer) -> Self {
        Self {
            sender,
            budget,
            signer,
            checksum: None,
        }
    }

    /// Adds this checksum to the body (`checksum::to_add` decided it applies).
    pub fn with_checksum(mut self, checksum: Option<Computed>) -> Self {
        self.checksum = checksum;
        self
    }

    /// Sends it with its length when it fits in one part, else (a PutObject) as a multipart
    /// upload.
    pub async fn send(
        self,
        operation: Operation,
        mut head: Head,
        body: ProxyBody,
        payload: Payload,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, UploadError> {
        let mut reader = PartReader {
            body,
            carry: BytesMut::new(),
            ended: false,
            held: self.budget.reserve(0)?,
        };
        let (first, ended) = reader.next(FIRST_PART).await?;
        if ended {
            head.headers
                .insert(header::CONTENT_LENGTH, first.len().into());
            if let Some(computed) = self.checksum.filter(|_| !first.is_empty()) {
                checksum::insert_header(&mut head.headers, computed, &first);
            }
            let kept = OutBody::Kept(first);
            return Ok(self
                .sender
                .send(&head, kept, payload, self.signer, record)
                .await?);
        }
        if operation != Operation::PutObject {
            return Err(ClientBodyError::LengthRequired.into());
        }
        let multipart = Multipart {
            sender: self.sender,
            uri: head.uri.clone(),
            signer: self.signer,
            checksum: self.checksum,
        };
        multipart.run(head.headers, first, reader, record).await
    }
}

/// One PutObject turned into a multipart upload.
struct Multipart<'a> {
    sender: &'a Sender,
    uri: Uri,
    signer: Signer,
    /// Each part's checksum, and the whole object's (FULL_OBJECT).
    checksum: Option<Computed>,
}

impl Multipart<'_> {
    async fn run(
        &self,
        headers: HeaderMap,
        first: Bytes,
        mut reader: PartReader,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, UploadError> {
        let created = self
            .send(
                Method::POST,
                "uploads",
                create_headers(headers, self.checksum),
                Bytes::new(),
                record,
            )
            .await?;
        let (created, text) = read_text(created).await?;
        if !created.status().is_success() {
            return Ok(failed(created, &text));
        }
        let Some(upload_id) = xml::parse_upload_id(&text) else {
            return Err(no_answer(
                "CreateMultipartUpload answered without an UploadId",
            ));
        };
        tracing::debug!(
            upload_id,
            "body of unknown length: sending it as a multipart upload"
        );
        let mut etags = Vec::new();
        let mut whole = self.checksum.map(Hasher::new);
        let mut next = Some(first);
        while let Some(part) = next.take() {
            let number = etags.len() + 1;
            if let Some(whole) = &mut whole {
                whole.update(&part);
            }
            let uploaded = self.upload_part(&upload_id, number, part, record).await;
            let read = match uploaded {
                Ok(etag) => {
                    etags.push(etag);
                    reader.next(part_size(number + 1)).await.map_err(Err)
                }
                Err(outcome) => Err(outcome),
            };
            match read {
                Ok((more, _)) => next = (!more.is_empty()).then_some(more),
                Err(outcome) => {
                    self.abort(&upload_id, record).await;
                    return outcome;
                }
            }
        }
        let whole = whole.map(|h| h.finish());
        self.complete(&upload_id, &etags, whole, record).await
    }

    /// Uploads one part and returns its ETag; anything else is what the client should see.
    async fn upload_part(
        &self,
        upload_id: &str,
        number: usize,
        part: Bytes,
        record: &mut RequestRecord,
    ) -> Result<(HeaderValue, Option<String>), Result<Response<ProxyBody>, UploadError>> {
        let query = format!("partNumber={number}&uploadId={upload_id}");
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, part.len().into());
        let sum = self.checksum.map(|c| c.of(&part));
        if let (Some(c), Some(sum)) = (self.checksum, &sum) {
            let value = HeaderValue::from_str(sum).expect("base64 is a valid header value");
            headers.insert(c.algorithm().header(), value);
        }
        let response = self
            .send(Method::PUT, &query, headers, part, record)
            .await
            .map_err(Err)?;
        if !response.status().is_success() {
            return Err(Ok(response));
        }
        match response.headers().get(header::ETAG) {
            Some(etag) => Ok((etag.clone(), sum)),
            None => Err(Err(no_answer("UploadPart answered without an ETag"))),
        }
    }

    async fn complete(
        &self,
        upload_id: &str,
        etags: &[(HeaderValue, Option<String>)],
        whole: Option<String>,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, UploadError> {
        let algorithm = self
            .checksum
            .map(|c| c.algorithm().name())
            .unwrap_or_default();
        let parts = etags
            .iter()
            .map(|(etag, sum)| (etag.to_str().unwrap_or_default(), sum.as_deref()));
        let xml = xml::complete_multipart_body(algorithm, parts);
        let mut headers = HeaderMap::new();
        if let (Some(c), Some(whole)) = (self.checksum, whole) {
            let value = HeaderValue::from_str(&whole).expect("base64 is a valid header value");
            headers.insert(c.algorithm().header(), value);
            headers.insert(CHECKSUM_TYPE, HeaderValue::from_static("FULL_OBJECT"));
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        headers.insert(header::CONTENT_LENGTH, xml.len().into());
        let query = format!("uploadId={upload_id}");
        let done = self
            .send(Method::POST, &query, headers, Bytes::from(xml), record)
            .await?;
        let (done, text) = read_text(done).await?;
        let etag = match xml::parse_complete_multipart(&text) {
            CompleteReply::Completed { etag } if done.status().is_success() => etag,
            // An error status, or 200 with an <Error> body (CompleteMultipartUpload can do that).
            _ => {
                self.abort(upload_id, record).await;
                return Ok(failed(done, &text));
            }
        };
        let mut response = Response::new(crate::body::empty());
        // Everything S3 said about the object (encryption, KMS key, bucket key, checksums,
        // version): the client asked for a PutObject and gets its answer's headers.
        for (name, value) in done.headers() {
            if name.as_str().starts_with("x-amz-") {
                response.headers_mut().append(name, value.clone());
            }
        }
        if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        Ok(response)
    }

    /// Best effort: a failed upload should not leave its parts behind.
    async fn abort(&self, upload_id: &str, record: &mut RequestRecord) {
        let query = format!("uploadId={upload_id}");
        let aborted = self
            .send(
                Method::DELETE,
                &query,
                HeaderMap::new(),
                Bytes::new(),
                record,
            )
            .await;
        if !aborted.is_ok_and(|r| r.status().is_success()) {
            tracing::warn!(upload_id, "could not abort the multipart upload");
        }
    }

    /// Sends one request of the upload to the object's URI with `query`.
    async fn send(
        &self,
        method: Method,
        query: &str,
        mut headers: HeaderMap,
        body: Bytes,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, UploadError> {
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let uri: Uri = format!("https://{authority}{}?{query}", self.uri.path())
            .parse()
            .map_err(|_| SignError::Unsignable("the upload URI is not valid"))?;
        let host = HeaderValue::from_str(authority)
            .map_err(|_| SignError::Unsignable("the host is not valid"))?;
        headers.insert(header::HOST, host);
        let head = Head {
            method,
            uri,
            headers,
        };
        let body = OutBody::Kept(body);
        let signer = self.sender.current(&self.signer).await;
        Ok(self
            .sender
            .send(&head, body, Payload::Unsigned, signer, record)
            .await?)
    }
}

const CHECKSUM_TYPE: &str = "x-amz-checksum-type";

/// The PutObject headers that belong on CreateMultipartUpload: everything but the length and
/// whole-object checksums, which do not describe the parts; and, with `checksum`, the algorithm
/// of the parts' checksums, for a FULL_OBJECT checksum (CRC64NVME has no other kind, and the
/// object's checksum is then the one a single PutObject would have had).
fn create_headers(mut headers: HeaderMap, checksum: Option<Computed>) -> HeaderMap {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove("content-md5");
    headers.remove("x-amz-sdk-checksum-algorithm");
    let checksums: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-amz-checksum-"))
        .cloned()
        .collect();
    for name in checksums {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    if let Some(c) = checksum {
        let algorithm = HeaderValue::from_static(c.algorithm().name());
        headers.insert("x-amz-checksum-algorithm", algorithm);
        headers.insert(CHECKSUM_TYPE, HeaderValue::from_static("FULL_OBJECT"));
    }
    headers
}

async fn read_text(
    response: Response<ProxyBody>,
) -> Result<(Response<ProxyBody>, String), UploadError> {
    let (parts, body) = response.into_parts();
    let bytes = read_answer(body).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok((Response::from_parts(parts, full(bytes)), text))
}

/// An error answer from S3 relayed as is; a 200 carrying `<Error>` becomes a 500 (as the SDKs
/// treat it) so that the client does not mistake it for success.
fn failed(response: Response<ProxyBody>, text: &str) -> Response<ProxyBody> {
    let (mut parts, _) = response.into_parts();
    if parts.status.is_success() {
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Response::from_parts(parts, full(text.to_owned()))
}

/// S3 answered in a way the conversion cannot go on from (502).
fn no_answer(what: &'static str) -> UploadError {
    UpstreamError::Answer(what.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_ten_thousand_hold_hundreds_of_gib() {
        assert_eq!(part_size(1), 8 << 20);
        assert_eq!(part_size(1000), 8 << 20);
        assert_eq!(part_size(1001), 16 << 20);
        assert_eq!(part_size(10_000), 64 << 20);
        let total: usize = (1..=10_000).map(part_size).sum();
        assert!(total > 450 << 30, "{total}");
    }

    #[test]
    fn create_headers_drop_length_and_whole_object_checksums() {
        let mut h = HeaderMap::new();
        h.insert("content-length", "5".parse().unwrap());
        h.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        h.insert("x-amz-meta-a", "1".parse().unwrap());
        let kept = create_headers(h.clone(), None);
        let mut names: Vec<&str> = kept.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "x-amz-meta-a"]);
        let kept = create_headers(h, Some(Computed::Crc64Nvme));
        assert_eq!(kept["x-amz-checksum-algorithm"], "CRC64NVME");
        assert_eq!(kept["x-amz-checksum-type"], "FULL_OBJECT");
        assert!(!kept.contains_key("x-amz-checksum-crc32"));
    }

    /// A part reader of a body made of `frames` of data, holding against `budget`.
    fn part_reader(frames: Vec<Vec<u8>>, budget: &Budget) -> PartReader {
        let frames = frames
            .into_iter()
            .map(|f| Ok::<_, crate::body::BoxError>(http_body::Frame::data(Bytes::from(f))));
        let body =
            http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
        PartReader {
            body,
            carry: BytesMut::new(),
            ended: false,
            held: budget.reserve(0).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_part_reader_past_the_budget_is_refused() {
        let budget = Budget::new(40);
        let mut reader = part_reader(vec![vec![0u8; 50]], &budget);
        assert!(matches!(reader.next(100).await, Err(UploadError::Busy(_))));
    }

    #[tokio::test]
    async fn the_part_reader_cuts_exact_parts_across_frames() {
        let budget = Budget::new(40);
        let frames = (0..10).map(|i| vec![i as u8; 7]).collect();
        let mut reader = part_reader(frames, &budget);
        let (a, end_a) = reader.next(30).await.unwrap();
        assert_eq!(
            budget.used(),
            35,
            "the part in flight and the carry are held"
        );
        let (b, end_b) = reader.next(30).await.unwrap();
        let (c, end_c) = reader.next(30).await.unwrap();
        assert_eq!(
            (a.len(), end_a, b.len(), end_b, c.len(), end_c),
            (30, false, 30, false, 10, true)
        );
        drop(reader);
        assert_eq!(budget.used(), 0);
        assert_eq!(&a[28..30], &[4, 4]);
    }
}
