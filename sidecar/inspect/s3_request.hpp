// The one signed S3 request of `cwcreds inspect --s3`, with libcurl's own
// Signature Version 4 (CURLOPT_AWS_SIGV4): the signing is libcurl's, so a
// signature S3 refuses is the keys' fault, not a signer of ours.
#pragma once

#include <string>

#include "sidecar/inspect/s3_verdict.hpp"

namespace cw {

struct S3Request {
    std::string url;  // from s3_request_url
    std::string region;
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty: no X-Amz-Security-Token header (CoreWeave's keys have none)
    bool object = false;        // GET the first byte (Range: bytes=0-0)
    std::string ca_file;        // empty: the system trust store
};

// Blocks for at most about 20 s; failures are values (http_status 0).
S3Answer send_s3_request(const S3Request& request);

}  // namespace cw
