#include "sidecar/exchange/upstream_answer.hpp"

#include <nlohmann/json.hpp>

#include "common/time_format.hpp"

namespace cw {

namespace {

// Field names per mode: container-credentials answers in PascalCase (AWS
// style), oidc in camelCase (gRPC JSON).
struct FieldNames {
    const char* access_key_id;
    const char* secret;
    const char* token;  // nullptr: the mode has none
    const char* expiry;
};

FieldNames names_for(ExchangeMode mode)
{
    if (mode == ExchangeMode::oidc) {
        return {"accessKeyId", "secretKey", nullptr, "expiry"};
    }
    return {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"};
}

const nlohmann::json* string_field(const nlohmann::json& body, const char* name)
{
    const auto it = body.find(name);
    return it != body.end() && it->is_string() ? &*it : nullptr;
}

}  // namespace

std::variant<Credentials, AnswerError> parse_upstream_answer(ExchangeMode mode, std::string_view body, SystemTime now)
{
    const auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_discarded()) {
        return AnswerError{"answer is not JSON"};
    }
    if (!json.is_object()) {
        return AnswerError{"answer is not a JSON object"};
    }
    const FieldNames names = names_for(mode);
    Credentials credentials;
    for (const auto& [name, target] : {std::pair{names.access_key_id, &credentials.access_key_id},
                                       std::pair{names.secret, &credentials.secret_access_key}}) {
        const auto* field = string_field(json, name);
        if (field == nullptr || field->get_ref<const std::string&>().empty()) {
            return AnswerError{std::string{"missing or empty "} + name};
        }
        *target = field->get<std::string>();
    }
    if (names.token != nullptr) {
        if (const auto it = json.find(names.token); it != json.end() && !it->is_null()) {
            if (!it->is_string()) {
                return AnswerError{std::string{names.token} + " is not a string"};
            }
            credentials.session_token = it->get<std::string>();
        }
    }
    const auto* expiry = string_field(json, names.expiry);
    if (expiry == nullptr) {
        return AnswerError{std::string{"missing "} + names.expiry};
    }
    const auto expiration = parse_rfc3339(expiry->get_ref<const std::string&>());
    if (!expiration) {
        return AnswerError{std::string{names.expiry} + " is not an RFC 3339 time"};
    }
    if (*expiration <= now) {
        return AnswerError{std::string{names.expiry} + " is already in the past"};
    }
    if (*expiration - now > k_max_lifetime) {
        return AnswerError{std::string{names.expiry} + " is more than 12 h away: is the upstream's Date wrong?"};
    }
    credentials.expiration = *expiration;
    credentials.obtained_at = now;
    return credentials;
}

}  // namespace cw
