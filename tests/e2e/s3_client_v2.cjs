// An AWS SDK for JavaScript v2 app (npm aws-sdk) as it would run in a pod:
// `new AWS.S3()` with the default credential chain, which reads
// AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
//
//   node s3_client_v2.cjs ENDPOINT BUCKET KEY   puts a random object, gets it back, compares
//
// Prints one JSON line: {"ok", "bytes", "accessKeyId"}.
const { randomBytes } = require("node:crypto");
const AWS = require("aws-sdk");

async function main() {
  const [endpoint, bucket, key] = process.argv.slice(2);
  // v2 predates AWS_ENDPOINT_URL: the endpoint is set in code.
  const s3 = new AWS.S3({ endpoint, s3ForcePathStyle: true, maxRetries: 0 });
  const body = randomBytes(64 * 1024);
  await s3.putObject({ Bucket: bucket, Key: key, Body: body }).promise();
  const answer = await s3.getObject({ Bucket: bucket, Key: key }).promise();
  const ok = Buffer.compare(Buffer.from(answer.Body), body) === 0;
  console.log(JSON.stringify({ ok, bytes: answer.Body.length, accessKeyId: s3.config.credentials.accessKeyId }));
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
