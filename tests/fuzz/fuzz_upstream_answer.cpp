// Fuzz target: cw::parse_upstream_answer, both answer shapes.
//
// The body comes from the network (a broken or hostile upstream, or anything
// between). Invariants: no crash, no exception; credentials have non-empty
// key fields and expire after `now`; they render as valid container
// credentials JSON; an error reason never quotes the body (a malformed 200
// answer may still carry a secret key).
#include <nlohmann/json.hpp>

#include "common/time_format.hpp"
#include "fuzz_support.hpp"
#include "sidecar/exchange/credentials.hpp"
#include "sidecar/exchange/upstream_answer.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-03-14T21:29:43Z");

void check(cw::ExchangeMode mode, std::string_view body)
{
    const auto result = cw::parse_upstream_answer(mode, body, k_now);
    if (const auto* error = std::get_if<cw::AnswerError>(&result)) {
        FUZZ_CHECK(!error->reason.empty());
        FUZZ_CHECK(error->reason.size() < 80);
        // Longer than any fixed reason ("Expiration is not an RFC 3339 time"
        // is 34): a shorter body may appear in one by coincidence, as
        // "r is not JSO" does in "answer is not JSON".
        if (body.size() >= 40) {
            FUZZ_CHECK(error->reason.find(body) == std::string::npos);
        }
        return;
    }
    const auto& credentials = std::get<cw::Credentials>(result);
    FUZZ_CHECK(!credentials.access_key_id.empty());
    FUZZ_CHECK(!credentials.secret_access_key.empty());
    FUZZ_CHECK(credentials.expiration > k_now);
    FUZZ_CHECK(credentials.obtained_at == k_now);
    FUZZ_CHECK(credentials.lifetime() > cw::Millis{0});
    // Never longer than CoreWeave issues: a wrong Date cannot stretch a key.
    FUZZ_CHECK(credentials.lifetime() <= cw::k_max_lifetime);
    if (mode == cw::ExchangeMode::oidc) {
        FUZZ_CHECK(credentials.session_token.empty());
    }

    // What an SDK gets: valid JSON, all four fields, an Expiration that reads
    // back as at most a second earlier than the one stated (never later).
    const auto served =
        nlohmann::json::parse(cw::container_credentials_json(credentials, credentials.expiration), nullptr, false);
    FUZZ_CHECK(served.is_object());
    FUZZ_CHECK(served.value("AccessKeyId", std::string{}) == credentials.access_key_id);
    FUZZ_CHECK(served.value("SecretAccessKey", std::string{}) == credentials.secret_access_key);
    FUZZ_CHECK(served.contains("Token") && served["Token"].is_string());
    const auto expiration = cw::parse_rfc3339(served.value("Expiration", std::string{}));
    FUZZ_CHECK(expiration.has_value());
    FUZZ_CHECK(*expiration <= credentials.expiration);
    FUZZ_CHECK(credentials.expiration - *expiration < std::chrono::seconds{1});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    const std::string_view body = cw_fuzz::as_text(data, size);
    check(cw::ExchangeMode::container_credentials, body);
    check(cw::ExchangeMode::oidc, body);
    return 0;
}
