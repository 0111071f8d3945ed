//! S3's header-name case on HTTP/1.1 answers (`Content-Length`, `ETag`, `x-amz-request-id`),
//! which legacy clients that match names case-sensitively (libs3) depend on.
//!
//! hyper writes lowercase names unless a response carries its (private) header-case map in its
//! extensions. A response parsed by a hyper client connection that preserves header case
//! carries one, so the emulator parses one canned S3 response head once, at start, and gives a
//! copy of its extensions to every HTTP/1.1 answer. (h2 names are lowercase by definition.)

use http::{Extensions, Method, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every header name the emulator may write whose case S3 does not write in lowercase, as S3
/// writes it (`x-amz-*` names are lowercase there too, hyper's default). It answers a HEAD
/// request, so the client reads no body whatever the framing headers say.
const S3_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Accept-Ranges: bytes\r\n\
Cache-Control: x\r\n\
Connection: keep-alive\r\n\
Content-Disposition: x\r\n\
Content-Encoding: x\r\n\
Content-Language: x\r\n\
Content-Length: 0\r\n\
Content-Range: x\r\n\
Content-Type: x\r\n\
Date: x\r\n\
ETag: x\r\n\
Expires: x\r\n\
Last-Modified: x\r\n\
Location: x\r\n\
Server: AmazonS3\r\n\
Transfer-Encoding: chunked\r\n\
\r\n";

/// The extensions of a response whose header names hyper writes in S3's case.
pub(crate) async fn s3_header_case() -> std::io::Result<Extensions> {
    let (client, mut server) = tokio::io::duplex(4096);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(client))
        .await
        .map_err(std::io::Error::other)?;
    let conn = tokio::spawn(conn);
    let answer = async {
        // Read the request head, then answer it.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = server.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&buf[..n]);
        }
        server.write_all(S3_HEAD).await
    };
    let request = Request::builder()
        .method(Method::HEAD)
        .uri("/")
        .body(Empty::new())
        .map_err(std::io::Error::other)?;
    let (response, answered) = tokio::join!(sender.send_request(request), answer);
    answered?;
    let response = response.map_err(std::io::Error::other)?;
    conn.abort();
    Ok(response.extensions().clone())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_canned_head_parses() {
        let ext = super::s3_header_case().await.unwrap();
        assert!(!ext.is_empty(), "hyper kept the header case");
    }
}
