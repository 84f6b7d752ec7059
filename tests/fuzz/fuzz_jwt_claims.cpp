// Fuzz target: cw::decode_jwt_claims and cw::base64url_decode.
//
// The token file is written by kubelet, but the sidecar reads whatever is
// there (and `cwcreds inspect` is pointed at arbitrary files). The input is
// decoded twice: as a whole token, and as the JSON payload of a token built
// around it (so the fuzzer reaches the claim reader without having to learn
// base64url). Invariants: no crash, no exception; base64url round-trips;
// decoded times are real instants after the epoch.
#include "common/jwt_claims.hpp"
#include "fuzz_support.hpp"

namespace {

void check_claims(std::string_view token)
{
    const auto result = cw::decode_jwt_claims(token);
    if (const auto* error = std::get_if<cw::JwtError>(&result)) {
        FUZZ_CHECK(!error->reason.empty());
        return;
    }
    const auto& claims = std::get<cw::JwtClaims>(result);
    for (const auto& instant : {claims.issued_at, claims.not_before, claims.expires_at}) {
        if (instant) {
            FUZZ_CHECK(instant->time_since_epoch().count() >= 0);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    const std::string_view input = cw_fuzz::as_text(data, size);

    // The raw input as a token file's content.
    check_claims(input);

    // base64url: decode(encode(x)) == x, and decoding arbitrary text never crashes.
    const std::string encoded = cw_fuzz::base64url_encode(input);
    const auto decoded = cw::base64url_decode(encoded);
    FUZZ_CHECK(decoded.has_value());
    FUZZ_CHECK(*decoded == input);
    (void)cw::base64url_decode(input);

    // The input as the claims of a token.
    check_claims("eyJhbGciOiJSUzI1NiJ9." + encoded + ".c2ln");
    return 0;
}
