use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn protocol_of(sent: &[u8], close: bool) -> (Option<Protocol>, Vec<u8>) {
    let (mut client, server) = tokio::io::duplex(1024);
    client.write_all(sent).await.unwrap();
    if close {
        client.shutdown().await.unwrap();
    }
    let mut io = Prefixed::new(server);
    let protocol = io.protocol().await.unwrap();
    drop(client);
    let mut read = Vec::new();
    io.read_to_end(&mut read).await.unwrap();
    (protocol, read)
}

#[tokio::test]
async fn the_first_bytes_tell_http1_from_h2_and_are_read_again() {
    let get = b"GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        protocol_of(get, false).await,
        (Some(Protocol::Http1), get.to_vec())
    );
    let mut h2 = H2_PREFACE.to_vec();
    h2.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    assert_eq!(
        protocol_of(&h2, false).await,
        (Some(Protocol::Http2), h2.clone())
    );
    // "PRI" that is not the preface, and a client that closes part way through it.
    let pri = b"PRI /x HTTP/1.1\r\n\r\n";
    assert_eq!(protocol_of(pri, false).await.0, Some(Protocol::Http1));
    assert_eq!(
        protocol_of(&H2_PREFACE[..10], true).await,
        (Some(Protocol::Http1), H2_PREFACE[..10].to_vec())
    );
    assert_eq!(protocol_of(b"", true).await, (None, Vec::new()));
}

#[tokio::test]
async fn the_preface_split_over_reads_is_still_h2() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut io = Prefixed::new(server);
    let detect = tokio::spawn(async move { (io.protocol().await.unwrap(), io) });
    for chunk in H2_PREFACE.chunks(5) {
        client.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let (protocol, mut io) = detect.await.unwrap();
    assert_eq!(protocol, Some(Protocol::Http2));
    let mut read = vec![0; H2_PREFACE.len()];
    io.read_exact(&mut read).await.unwrap();
    assert_eq!(read, H2_PREFACE);
}

#[tokio::test]
async fn unread_bytes_come_before_the_socket_and_waiting_keeps_them() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut io = Prefixed::new(server);
    io.unread(Bytes::from_static(b"ab"));
    io.unread(Bytes::from_static(b"cd"));
    assert!(io.wait().await.unwrap(), "bytes waiting: no need to read");
    client.write_all(b"ef").await.unwrap();
    let mut read = [0u8; 6];
    io.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"abcdef");
    // Nothing waiting: `wait` reads the next bytes and keeps them in front.
    client.write_all(b"gh").await.unwrap();
    assert!(io.wait().await.unwrap());
    assert!(io.has_unread());
    drop(client);
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"gh");
    assert!(!io.wait().await.unwrap(), "the client closed");
}

#[tokio::test]
async fn writes_go_straight_to_the_socket() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut io = Prefixed::new(server);
    io.unread(Bytes::from_static(b"unread"));
    io.write_all(b"answer").await.unwrap();
    let mut read = [0u8; 6];
    client.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"answer");
}

#[tokio::test]
async fn bytes_read_out_of_the_front_let_go_of_their_buffer() {
    let (_client, server) = tokio::io::duplex(1024);
    let mut io = Prefixed::new(server);
    // What hyper hands back is a slice of its whole read buffer.
    let buffer = Bytes::from(vec![b'x'; 8192]);
    io.unread(buffer.slice(..10));
    let mut read = [0u8; 10];
    io.read_exact(&mut read).await.unwrap();
    assert!(!io.has_unread());
    assert!(
        buffer.is_unique(),
        "the resting connection still holds hyper's buffer"
    );
}
