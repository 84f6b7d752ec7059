#include "sidecar/exchange/credentials.hpp"

#include <nlohmann/json.hpp>

#include "common/time_format.hpp"

namespace cw {

// Out of line, though short: nearly every file includes credentials.hpp, and
// a change to these rules then rebuilds this file instead of all of those.
Millis Credentials::lifetime() const
{
    return std::chrono::duration_cast<Millis>(expiration - upstream_date.value_or(obtained_at));
}

SteadyTime Credentials::end() const
{
    return sent + lifetime() - (upstream_date ? k_date_resolution : Millis{0});
}

std::optional<Millis> Credentials::clock_skew() const
{
    if (!upstream_date) {
        return std::nullopt;
    }
    return std::chrono::duration_cast<Millis>(obtained_at - *upstream_date);
}

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
