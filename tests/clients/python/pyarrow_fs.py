"""pyarrow.fs.S3FileSystem (the AWS SDK for C++ inside Arrow) through s3x-proxy, configured as a
user would, running the full workload: a Parquet dataset written and read with pyarrow.dataset,
then put, get, ranged get, head, list, multipart upload, server-side copy and delete.
Driven by tests/integration/clients_more.rs; prints "ok" on success.

Environment:
  MODE      "endpoint": endpoint_override=ENDPOINT_HOST, scheme="http" (path-style).
            "proxy": no endpoint_override: the SDK picks the Zonal endpoint itself (HTTPS) and
            reaches it through proxy_options=PROXY, trusting the proxy's CA with
            tls_ca_file_path=CA.
  BUCKET    the directory bucket; PREFIX the key prefix to use.
  SMALL, BIG  files to upload: SMALL in one request, BIG (over 10 MiB) as a multipart upload.
            PREFIX + "small.bin" and PREFIX + "multipart.bin" are left in the bucket for the
            test to compare with the files.
  ANON      "1" for anonymous (unsigned) requests, else dummy credentials.
"""
import hashlib
import os

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

mode = os.environ["MODE"]
bucket = os.environ["BUCKET"]
prefix = os.environ.get("PREFIX", "arrow/")
anon = os.environ.get("ANON") == "1"
base = f"{bucket}/{prefix}"

options = {"region": "us-west-2", "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=1)}
if anon:
    options["anonymous"] = True
else:
    options["access_key"] = "AKIDDUMMYARROW"
    options["secret_key"] = "dummy-arrow-secret"
if mode == "endpoint":
    options.update(endpoint_override=os.environ["ENDPOINT_HOST"], scheme="http")
elif mode == "proxy":
    options.update(proxy_options=os.environ["PROXY"], tls_ca_file_path=os.environ["CA"])
else:
    raise SystemExit(f"MODE must be endpoint or proxy, not {mode!r}")
fs = pafs.S3FileSystem(**options)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def read_all(path):
    with fs.open_input_stream(path) as f:
        return f.read()


# A partitioned Parquet dataset, written and read back.
table = pa.table(
    {
        "id": pa.array(range(10_000), pa.int64()),
        "part": pa.array([i % 3 for i in range(10_000)], pa.int64()),
        "name": pa.array([f"row-{i}" for i in range(10_000)]),
    }
)
partitioning = ds.partitioning(pa.schema([("part", pa.int64())]), flavor="hive")
ds.write_dataset(table, f"{base}dataset", filesystem=fs, format="parquet", partitioning=partitioning)
back = ds.dataset(f"{base}dataset", filesystem=fs, format="parquet", partitioning=partitioning)
got = back.to_table().sort_by("id").select(["id", "part", "name"])
assert got.equals(table), got
# A single Parquet file.
pq.write_table(table, f"{base}table.parquet", filesystem=fs)
assert pq.read_table(f"{base}table.parquet", filesystem=fs).equals(table)

# put and get
small = read(os.environ["SMALL"])
with fs.open_output_stream(f"{base}small.bin") as f:
    f.write(small)
assert read_all(f"{base}small.bin") == small
# ranged get
with fs.open_input_file(f"{base}small.bin") as f:
    assert f.read_at(1000, 10) == small[10:1010]
# head
info = fs.get_file_info(f"{base}small.bin")
assert info.type == pafs.FileType.File and info.size == len(small), info

# multipart: BIG through one output stream (Arrow uploads parts of 5 MiB and more)
big = read(os.environ["BIG"])
with fs.open_output_stream(f"{base}multipart.bin") as f:
    for i in range(0, len(big), 1024 * 1024):
        f.write(big[i : i + 1024 * 1024])
assert hashlib.sha256(read_all(f"{base}multipart.bin")).digest() == hashlib.sha256(big).digest()

# server-side copy
fs.copy_file(f"{base}small.bin", f"{base}copy.bin")
assert read_all(f"{base}copy.bin") == small

# list
names = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(base)))
assert names == ["copy.bin", "dataset", "multipart.bin", "small.bin", "table.parquet"], names

# delete
fs.delete_file(f"{base}copy.bin")
assert fs.get_file_info(f"{base}copy.bin").type == pafs.FileType.NotFound
fs.delete_dir(f"{base}dataset")  # DeleteObjects
names = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(base)))
assert names == ["multipart.bin", "small.bin", "table.parquet"], names
print("ok")
