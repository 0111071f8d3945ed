"""s3fs (fsspec's S3 filesystem, aiobotocore) and pandas through s3x-proxy, configured as a user
would, running the full workload: a pandas DataFrame written to and read from a Parquet file, then
put, get, ranged get, head, list, multipart upload, server-side copy and delete with s3fs.
Driven by tests/integration/clients_more.rs; prints "ok" on success.

Environment:
  MODE      "endpoint": endpoint_url=ENDPOINT (path-style, plain HTTP).
            "proxy": the Zonal endpoint, reached through HTTPS_PROXY (which botocore reads from
            the environment) with AWS_CA_BUNDLE naming the proxy's CA.
  ENDPOINT  http://127.0.0.1:PORT (endpoint mode).
  BUCKET    the directory bucket; PREFIX the key prefix to use.
  SMALL, BIG  files to upload: SMALL in one request, BIG (over 10 MiB) as a multipart upload.
            PREFIX + "small.bin" and PREFIX + "multipart.bin" are left in the bucket for the
            test to compare with the files.
  ANON      "1" for anonymous (unsigned) requests, else dummy credentials from the environment.
"""
import hashlib
import os

import pandas as pd
import s3fs

mode = os.environ["MODE"]
bucket = os.environ["BUCKET"]
prefix = os.environ.get("PREFIX", "s3fs/")
anon = os.environ.get("ANON") == "1"
base = f"{bucket}/{prefix}"

client_kwargs = {"region_name": "us-west-2"}
if mode == "endpoint":
    client_kwargs["endpoint_url"] = os.environ["ENDPOINT"]
elif mode != "proxy":
    raise SystemExit(f"MODE must be endpoint or proxy, not {mode!r}")
storage_options = {
    "anon": anon,
    "client_kwargs": client_kwargs,
    "config_kwargs": {"retries": {"max_attempts": 1}},
    # The listing cache would hide what the proxy answers after a write.
    "use_listings_cache": False,
}
fs = s3fs.S3FileSystem(**storage_options)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# pandas writes and reads a Parquet file through s3fs.
df = pd.DataFrame(
    {
        "id": range(10_000),
        "name": [f"row-{i}" for i in range(10_000)],
        "value": [i * 0.5 for i in range(10_000)],
    }
)
df.to_parquet(f"s3://{base}frame.parquet", storage_options=storage_options)
back = pd.read_parquet(f"s3://{base}frame.parquet", storage_options=storage_options)
assert back.equals(df), back

# put and get
small = read(os.environ["SMALL"])
fs.pipe_file(f"{base}small.bin", small)
assert fs.cat_file(f"{base}small.bin") == small
# ranged get
assert fs.cat_file(f"{base}small.bin", start=10, end=1010) == small[10:1010]
# head
info = fs.info(f"{base}small.bin")
assert info["size"] == len(small), info

# multipart: BIG written in 5 MiB blocks
big = read(os.environ["BIG"])
with fs.open(f"{base}multipart.bin", "wb", block_size=5 * 1024 * 1024) as f:
    for i in range(0, len(big), 1024 * 1024):
        f.write(big[i : i + 1024 * 1024])
got = fs.cat_file(f"{base}multipart.bin")
assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest(), "multipart read-back"

# server-side copy
fs.copy(f"{base}small.bin", f"{base}copy.bin")
assert fs.cat_file(f"{base}copy.bin") == small

# list
listed = sorted(p.rsplit("/", 1)[1] for p in fs.ls(base, detail=False))
assert listed == ["copy.bin", "frame.parquet", "multipart.bin", "small.bin"], listed

# delete
fs.rm_file(f"{base}copy.bin")
assert not fs.exists(f"{base}copy.bin")
fs.rm([f"{base}frame.parquet"])  # DeleteObjects
listed = sorted(p.rsplit("/", 1)[1] for p in fs.ls(base, detail=False))
assert listed == ["multipart.bin", "small.bin"], listed
print("ok")
