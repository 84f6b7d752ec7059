#include "sidecar/exchange/credentials.hpp"

#include <nlohmann/json.hpp>

#include "common/time_format.hpp"

namespace cw {

std::string container_credentials_json(const Credentials& credentials, SystemTime expiration)
{
    const nlohmann::ordered_json body{
        {"AccessKeyId", credentials.access_key_id},
        {"SecretAccessKey", credentials.secret_access_key},
        {"Token", credentials.session_token},
        {"Expiration", format_rfc3339(expiration)},
    };
    return body.dump();
}

std::string credential_process_json(const Credentials& credentials, SystemTime expiration)
{
    nlohmann::ordered_json body{
        {"Version", 1},
        {"AccessKeyId", credentials.access_key_id},
        {"SecretAccessKey", credentials.secret_access_key},
    };
    if (!credentials.session_token.empty()) {
        body["SessionToken"] = credentials.session_token;
    }
    body["Expiration"] = format_rfc3339(expiration);
    return body.dump();
}

}  // namespace cw
