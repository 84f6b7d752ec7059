#include "sidecar/serve/imds.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "common/loopback.hpp"
#include "common/time_format.hpp"

namespace cw {

namespace {

constexpr std::string_view k_token_path = "/latest/api/token";
constexpr std::string_view k_credentials_path = "/latest/meta-data/iam/security-credentials";
constexpr std::size_t k_token_bytes = 32;

HttpResponse text(int status, std::string body)
{
    return HttpResponse{status, "text/plain", std::move(body), {{"Cache-Control", "no-store"}}};
}

HttpResponse refusal(int status, std::string_view message)
{
    // EC2 answers refusals with a bare status and a short text body; SDKs
    // only look at the status.
    return text(status, std::string{message} + "\n");
}

// Values of one X- header (lower-case name); more than one is ambiguous.
std::vector<std::string_view> header_values(const HttpRequestHead& request, std::string_view name)
{
    std::vector<std::string_view> values;
    for (const auto& [key, value] : request.x_headers) {
        if (key == name) {
            values.emplace_back(value);
        }
    }
    return values;
}

std::optional<std::chrono::seconds> parse_ttl(std::string_view text)
{
    long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < 1 ||
        value > k_imds_max_ttl.count()) {
        return std::nullopt;
    }
    return std::chrono::seconds{value};
}

HttpResponse issue_token(const HttpRequestHead& request, ImdsSessions& sessions, SteadyTime now)
{
    if (request.method != "PUT") {
        auto response = refusal(405, "session tokens are issued to PUT only");
        response.headers.emplace_back("Allow", "PUT");
        return response;
    }
    const auto ttl_values = header_values(request, "x-aws-ec2-metadata-token-ttl-seconds");
    const auto ttl = ttl_values.size() == 1 ? parse_ttl(ttl_values.front()) : std::nullopt;
    if (!ttl) {
        return refusal(400, "X-aws-ec2-metadata-token-ttl-seconds must be one whole number from 1 to 21600");
    }
    auto response = text(200, sessions.issue(*ttl, now));
    response.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", std::to_string(ttl->count()));
    return response;
}

bool is_credentials_listing(std::string_view path)
{
    return path == k_credentials_path || path == std::string{k_credentials_path} + "/";
}

}  // namespace

ImdsSessions::ImdsSessions(std::function<void(unsigned char*, std::size_t)> random_bytes)
    : m_random(std::move(random_bytes))
{
    if (!m_random) {
        m_random = [](unsigned char* out, std::size_t size) {
            if (RAND_bytes(out, static_cast<int>(size)) != 1) {
                throw std::runtime_error("RAND_bytes failed");
            }
        };
    }
    m_random(m_key.data(), m_key.size());
}

namespace {

// A token's 32 bytes: when it expires (big-endian milliseconds of the
// monotonic clock), a nonce, and the first half of HMAC-SHA256 over both.
constexpr std::size_t k_sealed_bytes = 16;
constexpr std::size_t k_seal_bytes = k_token_bytes - k_sealed_bytes;
using TokenBytes = std::array<unsigned char, k_token_bytes>;

std::array<unsigned char, k_seal_bytes> seal(const std::array<unsigned char, 32>& key, const TokenBytes& token)
{
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), token.data(), k_sealed_bytes, mac.data(),
             &length) == nullptr ||
        length < k_seal_bytes) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    std::array<unsigned char, k_seal_bytes> out{};
    std::copy_n(mac.begin(), k_seal_bytes, out.begin());
    return out;
}

std::optional<TokenBytes> from_hex(std::string_view text)
{
    if (text.size() != 2 * k_token_bytes) {
        return std::nullopt;
    }
    TokenBytes bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto [end, error] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, bytes[i], 16);
        if (error != std::errc{} || end != text.data() + 2 * i + 2) {
            return std::nullopt;
        }
    }
    return bytes;
}

std::int64_t milliseconds_of(SteadyTime time)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

}  // namespace

std::string ImdsSessions::issue(std::chrono::seconds ttl, SteadyTime now)
{
    TokenBytes bytes{};
    auto expiry = static_cast<std::uint64_t>(milliseconds_of(now + ttl));
    for (std::size_t i = 8; i-- > 0; expiry >>= 8U) {
        bytes[i] = static_cast<unsigned char>(expiry & 0xFFU);
    }
    m_random(bytes.data() + 8, k_sealed_bytes - 8);
    const auto mac = seal(m_key, bytes);
    std::copy(mac.begin(), mac.end(), bytes.begin() + k_sealed_bytes);
    std::string token;
    token.reserve(2 * bytes.size());
    constexpr std::string_view k_hex = "0123456789abcdef";
    for (const unsigned char byte : bytes) {
        token += k_hex[byte >> 4U];
        token += k_hex[byte & 0x0FU];
    }
    return token;
}

bool ImdsSessions::valid(std::string_view token, SteadyTime now) const
{
    const auto bytes = from_hex(token);
    if (!bytes) {
        return false;
    }
    const auto mac = seal(m_key, *bytes);
    if (CRYPTO_memcmp(mac.data(), bytes->data() + k_sealed_bytes, k_seal_bytes) != 0) {
        return false;
    }
    std::uint64_t expiry = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        expiry = (expiry << 8U) | (*bytes)[i];
    }
    return milliseconds_of(now) < static_cast<std::int64_t>(expiry);
}

namespace {

// SDKs join AWS_EC2_METADATA_SERVICE_ENDPOINT and the path themselves: an
// endpoint written with a trailing slash (http://127.0.0.1:9911/) makes
// `//latest/…` (the JS SDK v2 does this), which EC2 accepts too.
std::string_view without_extra_slashes(std::string_view path)
{
    while (path.starts_with("//")) {
        path.remove_prefix(1);
    }
    return path;
}

// The Host header without its port: "[::1]:80" -> "::1", "localhost:80" -> "localhost".
std::string_view host_name_of(std::string_view host)
{
    if (host.starts_with('[')) {
        const auto close = host.find(']');
        const bool port_or_nothing =
            close != std::string_view::npos && (close + 1 == host.size() || host[close + 1] == ':');
        return port_or_nothing ? host.substr(1, close - 1) : std::string_view{};
    }
    return host.substr(0, host.find(':'));
}

bool is_instance_metadata_host(const std::optional<std::string>& host)
{
    if (!host) {
        return false;
    }
    const std::string_view name = host_name_of(*host);
    return name == "169.254.169.254" || is_loopback_host(name);
}

}  // namespace

bool is_imds_path(std::string_view path)
{
    path = without_extra_slashes(path);
    return path == "/latest" || path.starts_with("/latest/");
}

std::string imds_role_name(std::string_view subject)
{
    constexpr std::string_view k_prefix = "system:serviceaccount:";
    if (!subject.starts_with(k_prefix)) {
        return "cwcreds";
    }
    const std::string_view rest = subject.substr(k_prefix.size());
    const auto colon = rest.find(':');
    const std::string_view name = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    // Kubernetes names are DNS labels; anything else would not be one.
    const bool plain = !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
    return plain ? std::string{name} : "cwcreds";
}

std::string imds_credentials_json(const Served& served)
{
    // Taken from the very document /v1/credentials serves, so both agree on
    // every field, Expiration included.
    const auto shared = nlohmann::json::parse(served.body);
    const std::string token = shared.value("Token", "");
    // CoreWeave's keys carry no session token. The readers disagree on an
    // empty one: botocore drops a document without a "Token" key, while Ruby
    // aws-sdk-core 3.168 signs with an empty X-Amz-Security-Token header for
    // "" (S3 answers InvalidToken). null satisfies both: the key is present
    // for botocore, and Ruby (nil), Go v1 and v2 ("" after decoding) send no
    // header.
    const nlohmann::json document{
        {"Code", "Success"},
        {"LastUpdated", format_rfc3339(served.credentials.obtained_at)},
        {"Type", "AWS-HMAC"},
        {"AccessKeyId", shared.at("AccessKeyId")},
        {"SecretAccessKey", shared.at("SecretAccessKey")},
        {"Token", token.empty() ? nlohmann::json(nullptr) : nlohmann::json(token)},
        {"Expiration", shared.at("Expiration")},
    };
    return document.dump(2);
}

ImdsAnswer imds_answer(const HttpRequestHead& original, ImdsSessions& sessions, const ImdsView& view, SteadyTime now)
{
    HttpRequestHead request = original;
    request.path = without_extra_slashes(original.path);
    // A proxy in the path means the request may not come from this pod's own
    // processes: EC2 refuses X-Forwarded-For; the other relay headers say the same.
    if (request.relayed || !header_values(request, "x-forwarded-for").empty() ||
        !header_values(request, "x-real-ip").empty()) {
        return {refusal(403, "requests relayed by a proxy (X-Forwarded-For, X-Real-IP, Forwarded, Via) are refused")};
    }
    // A page in a browser or crawler in the pod, tricked by DNS rebinding into
    // sending to loopback, still names its own site in Host.
    if (!is_instance_metadata_host(request.host)) {
        return {refusal(403,
                        "instance metadata answers only requests addressed to a loopback name or address or "
                        "169.254.169.254")};
    }
    if (request.path == k_token_path) {
        HttpResponse response = issue_token(request, sessions, now);
        const bool issued = response.status == 200;
        return {std::move(response), false, issued};
    }
    // No IMDSv1: without a valid session token nothing below is answered.
    const auto tokens = header_values(request, "x-aws-ec2-metadata-token");
    if (tokens.size() != 1 || !sessions.valid(tokens.front(), now)) {
        return {refusal(401, "a valid X-aws-ec2-metadata-token is required (PUT /latest/api/token first)")};
    }
    if (request.method != "GET" && request.method != "HEAD") {
        auto response = refusal(405, "only GET is supported");
        response.headers.emplace_back("Allow", "GET, HEAD");
        return {response};
    }
    if (is_credentials_listing(request.path)) {
        return {text(200, view.role)};
    }
    if (request.path == std::string{k_credentials_path} + "/" + view.role) {
        if (!view.served) {
            return {refusal(503, "no unexpired credentials to serve" +
                                     (view.unavailable.empty() ? std::string{} : "; " + view.unavailable))};
        }
        return {
            HttpResponse{200, "application/json", imds_credentials_json(*view.served), {{"Cache-Control", "no-store"}}},
            true};
    }
    if (!view.region.empty() && request.path == "/latest/meta-data/placement/region") {
        return {text(200, view.region)};
    }
    if (!view.region.empty() && request.path == "/latest/dynamic/instance-identity/document") {
        return {HttpResponse{200, "application/json", nlohmann::json{{"region", view.region}}.dump(2), {}}};
    }
    return {refusal(404, "not found")};
}

}  // namespace cw
