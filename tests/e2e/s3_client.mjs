// An AWS SDK for JavaScript v3 app as it would run in a pod: `new S3Client()` with the
// default credential chain. Credentials come from AWS_CONTAINER_CREDENTIALS_FULL_URI +
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, region and endpoint from AWS_REGION and
// AWS_ENDPOINT_URL. Path-style addressing because the endpoint is 127.0.0.1.
//
//   node s3_client.mjs BUCKET KEY     puts a random object, gets it back, compares
//
// Prints one JSON line: {"ok", "bytes", "accessKeyId"} (the key the SDK signed with).
import { randomBytes } from "node:crypto";
import { S3Client, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";

const [bucket, key] = process.argv.slice(2);
const client = new S3Client({ forcePathStyle: true, maxAttempts: 1 });

let signedWith = null;
client.middlewareStack.add(
  (next) => async (args) => {
    const match = /Credential=([A-Z0-9]+)\//.exec(args.request?.headers?.authorization ?? "");
    if (match) signedWith = match[1];
    return next(args);
  },
  { step: "deserialize", name: "recordSigningKey" },
);

const body = randomBytes(64 * 1024);
await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
const got = Buffer.from(await answer.Body.transformToByteArray());
const ok = Buffer.compare(got, body) === 0;
console.log(JSON.stringify({ ok, bytes: got.length, accessKeyId: signedWith }));
process.exit(ok ? 0 : 1);
