// S3 credentials as the sidecar holds them, and the JSON shapes it gives out.
#pragma once

#include <string>

#include "common/clock.hpp"

namespace cw {

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // CoreWeave's is usually empty
    SystemTime expiration;
    SystemTime obtained_at;  // when the answer arrived, on our clock

    [[nodiscard]] Millis lifetime() const
    {
        return std::chrono::duration_cast<Millis>(expiration - obtained_at);
    }
};

// `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`: the AWS
// container-credentials shape. `Token` is always present (botocore and the JS
// SDK fail without it), `Expiration` is RFC 3339 UTC with `Z`.
std::string container_credentials_json(const Credentials& credentials);

// `{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken"?,"Expiration"}`
// for `credential_process` in ~/.aws/config.
std::string credential_process_json(const Credentials& credentials);

}  // namespace cw
