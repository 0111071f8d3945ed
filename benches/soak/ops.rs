//! The operations a worker runs, each checking the answer against what the worker stored:
//! PUT (four kinds), GET whole and ranged, HEAD, ListObjectsV2, CopyObject and DELETE.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use super::{data, Obj, Worker, MIN_GET};
use crate::classify::{Observed, Op};
use crate::client::{encode_key, full, streamed};

impl Worker {
    pub(super) async fn put(&mut self, op: Op, len: usize) {
        let bucket = self.bucket();
        let key = self.new_key(match op {
            Op::PutMultipart => "-big",
            Op::Put1MiB => "-1m",
            Op::PutUnknownSmall => "-u",
            _ => "-s",
        });
        let seed = self.rng.next_u64() | 1;
        let bytes = data(seed, len);
        let req = self
            .conns
            .request(Method::PUT, &bucket, &format!("/{}", encode_key(&key)), "");
        let mut a = self.attempt(op, &req, &bucket, Some(&key));
        a.body_len = len as u64;
        let mut req = req;
        let body = match op {
            Op::PutSmall => full(bytes),
            _ => streamed(bytes),
        };
        if matches!(op, Op::PutSmall | Op::Put1MiB) {
            a.declared_length = true;
            req.headers_mut().insert("content-length", len.into());
        }
        req.headers_mut()
            .insert("content-type", "application/octet-stream".parse().unwrap());
        let outcome = self.exchange(&bucket, req.map(|()| body), None).await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| match r.headers.get("etag") {
                None => Err("PutObject answered 200 without an ETag".into()),
                Some(e) if op == Op::PutMultipart && !e.to_str().unwrap_or("").contains('-') => {
                    Err(format!(
                        "a multipart upload's ETag has no part count: {e:?}"
                    ))
                }
                Some(_) => Ok(()),
            })
        });
        let stored = match &outcome {
            Ok(r) => Some(etag(&r.headers)),
            Err(Observed::NoAnswer(_) | Observed::Hang(_)) => {
                self.uncertain.push((bucket.clone(), key.clone()));
                None
            }
            Err(_) => None,
        };
        self.record(&a, &outcome, len as u64);
        if let Some(etag) = stored {
            let big = op == Op::PutMultipart;
            let obj = Obj {
                bucket,
                key,
                seed,
                len,
                etag,
                big,
            };
            if big {
                self.big = Some((obj.clone(), false));
            }
            self.live.push(obj);
        }
    }

    pub(super) async fn read(&mut self, op: Op, obj: Obj) {
        let method = if op == Op::Head {
            Method::HEAD
        } else {
            Method::GET
        };
        let path = format!("/{}", encode_key(&obj.key));
        let mut req = self.conns.request(method, &obj.bucket, &path, "");
        let whole = obj.data();
        let (want, expected, range) = match op {
            Op::GetRange => {
                let start = self.rng.below((obj.len - MIN_GET) as u64 + 1) as usize;
                let most = (obj.len - start).min(256 * 1024);
                let n = MIN_GET + self.rng.below((most - MIN_GET) as u64 + 1) as usize;
                let range = (start, start + n - 1);
                let value = format!("bytes={}-{}", range.0, range.1);
                req.headers_mut().insert("range", value.parse().unwrap());
                let slice = whole.slice(range.0..=range.1);
                (StatusCode::PARTIAL_CONTENT, Some(slice), Some(range))
            }
            Op::Get => (StatusCode::OK, Some(whole.clone()), None),
            _ => (StatusCode::OK, None, None),
        };
        let a = self.attempt(op, &req, &obj.bucket, Some(&obj.key));
        let want_len = expected.as_ref().map_or(obj.len, Bytes::len);
        let outcome = self
            .exchange(
                &obj.bucket,
                req.map(|()| full(Bytes::new())),
                expected.as_ref(),
            )
            .await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, want, |r| {
                let length = r
                    .headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok());
                if length != Some(want_len.to_string().as_str()) {
                    return Err(format!("Content-Length {length:?}, expected {want_len}"));
                }
                if etag(&r.headers) != obj.etag {
                    return Err(format!(
                        "ETag {:?}, stored {:?}",
                        etag(&r.headers),
                        obj.etag
                    ));
                }
                if op != Op::Head {
                    if let Some(at) = r.read.mismatch_at {
                        return Err(format!("data differs from offset {at}"));
                    }
                    if r.read.received != want_len {
                        return Err(format!("{} bytes, expected {want_len}", r.read.received));
                    }
                }
                if let Some((s, e)) = range {
                    let want = format!("bytes {s}-{e}/{}", obj.len);
                    let got = r.headers.get("content-range").and_then(|v| v.to_str().ok());
                    if got != Some(want.as_str()) {
                        return Err(format!("Content-Range {got:?}, expected {want:?}"));
                    }
                }
                Ok(())
            })
        });
        if outcome.is_ok() && op != Op::Head {
            let mut ledger = self.shared.ledger();
            let later = ledger.last_full_get_issued.is_none_or(|t| t < a.started);
            if later {
                ledger.last_full_get_issued = Some(a.started);
            }
        }
        let ok = self.record(&a, &outcome, 0);
        if let Some((big, read)) = &mut self.big {
            if big.key == obj.key && ok && op == Op::Get {
                *read = true;
            }
        }
    }

    pub(super) async fn list(&mut self) {
        let bucket = self.bucket();
        let prefix = format!("w{}/", self.id);
        let query = format!(
            "list-type=2&prefix={}",
            encode_key(&prefix).replace('/', "%2F")
        );
        let req = self.conns.request(Method::GET, &bucket, "/", &query);
        let a = self.attempt(Op::List, &req, &bucket, None);
        let outcome = self
            .exchange(&bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let live: Vec<&str> = self
            .live
            .iter()
            .filter(|o| o.bucket == bucket)
            .map(|o| o.key.as_str())
            .collect();
        let uncertain: Vec<&str> = self
            .uncertain
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, k)| k.as_str())
            .collect();
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| {
                let text = String::from_utf8_lossy(&r.read.body);
                let listed = xml_values(&text, "Key");
                let missing: Vec<&&str> = live
                    .iter()
                    .filter(|k| !listed.iter().any(|l| l == **k))
                    .collect();
                let extra: Vec<&String> = listed
                    .iter()
                    .filter(|l| !live.contains(&l.as_str()) && !uncertain.contains(&l.as_str()))
                    .collect();
                if missing.is_empty() && extra.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "listing differs: missing {missing:?}, unexpected {extra:?}"
                    ))
                }
            })
        });
        self.record(&a, &outcome, 0);
    }

    pub(super) async fn copy(&mut self) {
        let src = self.random_obj();
        let bucket = self.bucket();
        let key = self.new_key("-c");
        let path = format!("/{}", encode_key(&key));
        let mut req = self.conns.request(Method::PUT, &bucket, &path, "");
        let source = format!("/{}/{}", src.bucket, encode_key(&src.key));
        req.headers_mut()
            .insert("x-amz-copy-source", source.parse().unwrap());
        let a = self.attempt(Op::Copy, &req, &bucket, Some(&key));
        let outcome = self
            .exchange(&bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| {
                let text = String::from_utf8_lossy(&r.read.body);
                if text.contains("<Error>") || xml_values(&text, "ETag").is_empty() {
                    return Err(format!("CopyObject answered 200 with {text}"));
                }
                Ok(())
            })
        });
        let etag = outcome.as_ref().ok().map(|r| {
            let text = String::from_utf8_lossy(&r.read.body);
            xml_values(&text, "ETag").remove(0)
        });
        if let Err(Observed::NoAnswer(_) | Observed::Hang(_)) = &outcome {
            self.uncertain.push((bucket.clone(), key.clone()));
        }
        self.record(&a, &outcome, 0);
        if let Some(etag) = etag {
            self.live.push(Obj {
                bucket,
                key,
                etag,
                ..src
            });
        }
    }

    pub(super) async fn delete(&mut self) {
        let index = match &self.big {
            Some((big, true)) => self.live.iter().position(|o| o.key == big.key),
            _ => self.live.iter().position(|o| !o.big),
        };
        let Some(index) = index else { return };
        let obj = self.live[index].clone();
        let path = format!("/{}", encode_key(&obj.key));
        let req = self.conns.request(Method::DELETE, &obj.bucket, &path, "");
        let a = self.attempt(Op::Delete, &req, &obj.bucket, Some(&obj.key));
        let outcome = self
            .exchange(&obj.bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let outcome = outcome.and_then(|r| Self::judge(r, StatusCode::NO_CONTENT, |_| Ok(())));
        if let Err(Observed::NoAnswer(_) | Observed::Hang(_)) = &outcome {
            self.uncertain.push((obj.bucket.clone(), obj.key.clone()));
        }
        let gone = self.record(&a, &outcome, 0)
            || matches!(outcome, Err(Observed::NoAnswer(_) | Observed::Hang(_)));
        if gone {
            self.live.remove(index);
            if self.big.as_ref().is_some_and(|(b, _)| b.key == obj.key) {
                self.big = None;
            }
        }
    }
}

fn etag(headers: &HeaderMap) -> String {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The unescaped text of every `<name>` element.
fn xml_values(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        let raw = &after[..end];
        out.push(
            quick_xml::escape::unescape(raw)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| raw.to_owned()),
        );
        rest = &after[end + close.len()..];
    }
    out
}
