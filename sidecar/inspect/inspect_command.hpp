// `cwcreds inspect`: what is wrong with the token (and the sidecar).
#pragma once

#include <filesystem>
#include <string>

#include "sidecar/inspect/s3_verdict.hpp"

namespace cw {

struct InspectSettings {
    std::filesystem::path token_file;
    std::string audience = "https://coreweave.com/iam";
    std::string org_id;       // names the policy principal in the advice
    std::string sidecar_url;  // empty: the token only
    bool json_output = false;

    // --s3: one signed request with the keys the sidecar serves. parse_config
    // resolves each from its flag, then the AWS variable an SDK would read,
    // then CoreWeave's default.
    std::string s3_uri;       // s3://BUCKET[/KEY]; empty: no S3 request
    std::string s3_endpoint;  // AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, https://cwobject.com
    std::string s3_region;    // AWS_REGION, AWS_DEFAULT_REGION, US-EAST-04A
    S3Addressing s3_addressing = S3Addressing::virtual_hosted;
    std::string s3_ca_file;       // AWS_CA_BUNDLE; empty: the system trust store
    std::string credentials_url;  // --sidecar, AWS_CONTAINER_CREDENTIALS_FULL_URI, http://127.0.0.1:9911
    // What an SDK sends as Authorization: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's
    // content, else AWS_CONTAINER_AUTHORIZATION_TOKEN, else the --token-file's.
    std::string caller_token_file;
    std::string caller_token;
};

// Prints the report; exit 1 when a check fails.
int run_inspect(const InspectSettings& settings);

}  // namespace cw
