// The AWS SDK for JavaScript v3 through s3x-proxy, configured as a user would, running the full
// workload: put, get, ranged get, head, list, multipart upload (lib-storage's Upload), server-side
// copy, delete. Driven by tests/integration/clients_more.rs; prints "ok" on success.
//
// Environment:
//   MODE     "proxy": the SDK's own endpoint (the Zonal host, with its own CreateSession), reached
//            through HTTPS_PROXY with a proxy agent; the proxy's CA comes from NODE_EXTRA_CA_CERTS.
//            "endpoint": endpoint mode, `endpoint: ENDPOINT` with `forcePathStyle: true`.
//   PROXY    http://127.0.0.1:PORT, the proxy's listener (both modes).
//   BUCKET   the directory bucket; PREFIX the key prefix to use.
//   SMALL, BIG  files to upload: SMALL with PutObject, BIG (over 10 MiB) with lib-storage's
//            Upload in 5 MiB parts. PREFIX + "small.bin" and PREFIX + "multipart.bin" are left
//            in the bucket for the test to compare with the files.
//   SESSION_AUTH  "off" sets disableS3ExpressSessionAuth (no CreateSession from the SDK).
// Modules come from NODE_PATH (target/js/node_modules, installed by .ci/test.sh).
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
} = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const { NodeHttpHandler } = require("@smithy/node-http-handler");
const { HttpsProxyAgent } = require("hpagent");

const mode = process.env.MODE;
const proxy = process.env.PROXY;
const bucket = process.env.BUCKET;
const prefix = process.env.PREFIX || "js/";
const sessionAuth = process.env.SESSION_AUTH !== "off";

function sha256(buf) {
  return crypto.createHash("sha256").update(buf).digest("hex");
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function bytes(body) {
  return Buffer.from(await body.transformToByteArray());
}

function client() {
  const common = {
    region: "us-west-2",
    credentials: { accessKeyId: "AKIDDUMMYJSCLIENT", secretAccessKey: "dummy-js-secret" },
    maxAttempts: 1,
    disableS3ExpressSessionAuth: !sessionAuth,
  };
  if (mode === "proxy") {
    return new S3Client({
      ...common,
      requestHandler: new NodeHttpHandler({
        httpsAgent: new HttpsProxyAgent({ proxy, keepAlive: true }),
      }),
    });
  }
  if (mode === "endpoint") {
    return new S3Client({ ...common, endpoint: proxy, forcePathStyle: true });
  }
  throw new Error(`MODE must be proxy or endpoint, not ${mode}`);
}

async function main() {
  const s3 = client();
  const small = fs.readFileSync(process.env.SMALL);
  const key = `${prefix}small.bin`;
  const extraKey = `${prefix}extra.bin`;

  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: small }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: extraKey, Body: small.subarray(0, 1000) }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  check((await bytes(got.Body)).equals(small), "GetObject returns the bytes put");

  const ranged = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, Range: "bytes=10-1009" }),
  );
  check(
    ranged.ContentRange === `bytes 10-1009/${small.length}`,
    `Content-Range ${ranged.ContentRange}`,
  );
  check((await bytes(ranged.Body)).equals(small.subarray(10, 1010)), "ranged GetObject");

  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  check(head.ContentLength === small.length, `HeadObject ContentLength ${head.ContentLength}`);

  const big = fs.readFileSync(process.env.BIG);
  const bigKey = `${prefix}multipart.bin`;
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: bigKey, Body: big },
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
    leavePartsOnError: false,
  });
  await upload.done();
  const gotBig = await bytes((await s3.send(new GetObjectCommand({ Bucket: bucket, Key: bigKey }))).Body);
  check(sha256(gotBig) === sha256(big), "the multipart object reads back byte-identical");

  const copyKey = `${prefix}copy.bin`;
  await s3.send(
    new CopyObjectCommand({ Bucket: bucket, Key: copyKey, CopySource: `${bucket}/${key}` }),
  );
  const copied = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: copyKey }));
  check((await bytes(copied.Body)).equals(small), "CopyObject copied the bytes");

  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const keys = (listed.Contents || []).map((o) => o.Key).sort();
  check(
    JSON.stringify(keys) === JSON.stringify([copyKey, extraKey, bigKey, key].sort()),
    `ListObjectsV2 keys ${JSON.stringify(keys)}`,
  );

  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: copyKey }));
  let gone = false;
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: copyKey }));
  } catch (e) {
    gone = e.$metadata && e.$metadata.httpStatusCode === 404;
  }
  check(gone, "HeadObject after DeleteObject is 404");

  await s3.send(
    new DeleteObjectsCommand({
      Bucket: bucket,
      Delete: { Objects: [{ Key: extraKey }], Quiet: true },
    }),
  );
  const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const left = (after.Contents || []).map((o) => o.Key);
  check(
    JSON.stringify(left) === JSON.stringify([bigKey, key]),
    `left after deletes: ${JSON.stringify(left)}`,
  );
  console.log("ok");
}

main().catch((e) => {
  console.error(e);
  if (e && e.$response) console.error("response:", e.$response.statusCode, e.$response.headers);
  process.exit(1);
});
