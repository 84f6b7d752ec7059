# A Ruby aws-sdk-s3 app (Debian's ruby-aws-sdk-s3) as it would run in a pod:
# Aws::S3::Client.new with the default credential chain. aws-sdk-core 3.168
# has no container-credentials FULL_URI support, so it reaches cwcreds through
# instance metadata: AWS_EC2_METADATA_SERVICE_ENDPOINT (whose port it ignores,
# always connecting to 80).
#
#   ruby s3_client.rb ENDPOINT BUCKET KEY   puts a random object, gets it back, compares
#
# Prints one JSON line: {"ok", "bytes", "accessKeyId"}.
require "aws-sdk-s3"
require "json"
require "securerandom"

endpoint, bucket, key = ARGV
client = Aws::S3::Client.new(endpoint: endpoint, force_path_style: true, retry_limit: 0)
body = SecureRandom.random_bytes(64 * 1024)
client.put_object(bucket: bucket, key: key, body: body)
got = client.get_object(bucket: bucket, key: key).body.read
ok = got.b == body.b  # compare bytes, whatever encoding each string carries
puts JSON.generate({ ok: ok, bytes: got.bytesize, accessKeyId: client.config.credentials.credentials.access_key_id })
exit(ok ? 0 : 1)
