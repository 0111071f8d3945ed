"""Captures requests signed by botocore, byte for byte, as fixtures for the SigV4 verifier.

Regenerate (from the repository root, with the venv that has boto3):

    S3X_FIXTURE_NOW=$(date +%s) cargo test --lib identity::botocore_tests::print_fixture_session \
        -- --ignored --nocapture | sed -n '/^<?xml/,$p' > /tmp/session.xml
    target/py/bin/python src/admit/identity/testdata/capture_botocore.py /tmp/session.xml \
        src/admit/identity/testdata/botocore

then set MINTED_AT in botocore_tests.rs to that S3X_FIXTURE_NOW. A local HTTP server answers
every request (CreateSession with the XML minted by the proxy's code for client `writer`, with
the fixture session key); each request head and body it receives is written to one file.
"""
import os
import socket
import sys
import threading

import boto3
from botocore.config import Config

session_xml = open(sys.argv[1], "rb").read()
out_dir = sys.argv[2]
captured = []

LIST = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b'<Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>')


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def answer(request):
    line = request.split(b"\r\n", 1)[0]
    method, target = line.split(b" ")[:2]
    if b"?session" in target:
        body = session_xml
    elif method == b"GET" and b"list-type=2" in target:
        body = LIST
    elif method == b"GET":
        body = b"hello"
    else:
        body = b""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\n"
            b"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nx-amz-request-id: FIXTURE\r\n")
    if method == b"HEAD":
        return head + b"Content-Length: 5\r\n\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            while True:
                request = read_request(conn)
                if request is None:
                    break
                captured.append(request)
                conn.sendall(answer(request))


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]
threading.Thread(target=serve, args=(listener,), daemon=True).start()

for var in ["AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]:
    os.environ.pop(var, None)
s3 = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    region_name="us-west-2",
    aws_access_key_id="AKIDWRITER",
    aws_secret_access_key="writer-secret-0123456789",
    config=Config(retries={"max_attempts": 1}),
)
names = []


def step(name, call):
    """Runs one call; `name` is a list when the call sends more than one request."""
    before = len(captured)
    call()
    sent = [name] if isinstance(name, str) else name
    assert len(captured) - before == len(sent), (name, len(captured) - before)
    names.extend(sent)


gp, express = "gp-bucket", "data--usw2-az1--x-s3"
step("gp-put-object", lambda: s3.put_object(Bucket=gp, Key="dir/a b+c~(1).txt", Body=b"hello", Metadata={"color": "blue"}))
step("gp-get-object-range", lambda: s3.get_object(Bucket=gp, Key="dir/caf\u00e9 & co.txt", Range="bytes=0-4"))
step("gp-list-objects-v2", lambda: s3.list_objects_v2(Bucket=gp, Prefix="dir/a b", Delimiter="/"))
step(["express-create-session", "express-put-object"], lambda: s3.put_object(Bucket=express, Key="k/x=y;z", Body=b"hello"))
step("express-get-object", lambda: s3.get_object(Bucket=express, Key="k/x=y;z"))
step("express-head-object", lambda: s3.head_object(Bucket=express, Key="k/x=y;z"))
step("express-copy-object", lambda: s3.copy_object(Bucket=express, Key="copy", CopySource={"Bucket": "logs--usw2-az1--x-s3", "Key": "src key"}))

s3v4 = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    region_name="us-west-2",
    aws_access_key_id="AKIDWRITER",
    aws_secret_access_key="writer-secret-0123456789",
    config=Config(signature_version="s3v4"),
)
urls = {
    # botocore's default for general-purpose presigning is SigV2, which the proxy refuses.
    "gp-presigned-get-sigv2": s3.generate_presigned_url("get_object", Params={"Bucket": gp, "Key": "dir/a b.txt"}, ExpiresIn=600),
    "gp-presigned-get": s3v4.generate_presigned_url("get_object", Params={"Bucket": gp, "Key": "dir/a b.txt", "VersionId": "v1"}, ExpiresIn=600),
    "express-presigned-get": s3.generate_presigned_url("get_object", Params={"Bucket": express, "Key": "k/x=y;z"}, ExpiresIn=300),
}
for name, url in urls.items():
    target = url.split(f"127.0.0.1:{port}", 1)[1]
    raw = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    captured.append(raw)
    names.append(name)

os.makedirs(out_dir, exist_ok=True)
for i, (name, raw) in enumerate(zip(names, captured)):
    with open(os.path.join(out_dir, f"{i:02d}-{name}.http"), "wb") as f:
        f.write(raw)
print(f"{len(captured)} requests captured in {out_dir}")
