#include "sidecar/inspect/s3_verdict.hpp"

#include <algorithm>

#include "common/duration.hpp"
#include "common/time_format.hpp"

namespace cw {

namespace {

// S3's URI encoding for Signature Version 4: everything but the unreserved
// characters, each byte as %XX upper case; '/' kept between key segments.
std::string encode_key(std::string_view key)
{
    static constexpr std::string_view k_hex = "0123456789ABCDEF";
    std::string out;
    for (const char c : key) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || c == '/') {
            out += c;
        } else {
            out += '%';
            out += k_hex[byte >> 4U];
            out += k_hex[byte & 0xFU];
        }
    }
    return out;
}

bool is_code_character(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';
}

std::string rounded_duration(Millis value)
{
    return format_duration(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::abs(value)));
}

// "this machine's clock reads …, the endpoint's … (20m behind)"
std::string clock_comparison(const S3Answer& answer, SystemTime now)
{
    std::string text = "this machine's clock reads " + format_rfc3339(now);
    if (!answer.server_date) {
        return text + "; the endpoint sent no Date to compare with";
    }
    const auto offset = std::chrono::duration_cast<Millis>(now - *answer.server_date);
    return text + ", the endpoint's " + format_rfc3339(*answer.server_date) + " (" +
           (std::chrono::abs(offset) < Millis{1000}
                ? std::string{"the same"}
                : rounded_duration(offset) + (offset < Millis{0} ? " behind" : " ahead")) +
           ")";
}

std::string status_and_code(const S3Answer& answer)
{
    return "HTTP " + std::to_string(answer.http_status) + (answer.error_code.empty() ? "" : " " + answer.error_code);
}

std::string what(const S3Target& target)
{
    return target.key.empty() ? "list s3://" + target.bucket : "read s3://" + target.bucket + "/" + target.key;
}

std::string policy_advice(const S3Context& context)
{
    const std::string action = context.target.key.empty() ? "s3:ListBucket" : "s3:GetObject";
    const std::string resource =
        "arn:aws:s3:::" + context.target.bucket + (context.target.key.empty() ? "" : "/" + context.target.key);
    std::string advice =
        "grant " + action + " on " + resource + " to " +
        (context.principal.empty() ? "this workload's principal (`cwcreds inspect` prints it)" : context.principal) +
        " in the bucket policy or an organization access policy, and check neither denies it";
    if (!context.target.key.empty()) {
        advice += " (S3 also answers AccessDenied for a missing object when s3:ListBucket is not granted)";
    }
    return advice;
}

}  // namespace

std::variant<S3Target, std::string> parse_s3_uri(std::string_view uri)
{
    constexpr std::string_view k_scheme = "s3://";
    if (uri.substr(0, k_scheme.size()) != k_scheme) {
        return "'" + std::string{uri} + "' is not an s3://BUCKET[/KEY] URI";
    }
    const std::string_view rest = uri.substr(k_scheme.size());
    const auto slash = rest.find('/');
    S3Target target{std::string{rest.substr(0, slash)},
                    slash == std::string_view::npos ? "" : std::string{rest.substr(slash + 1)}};
    // Bucket names are 3-63 lower-case letters, digits, dots and hyphens;
    // anything else could not be put into a host name or a path unescaped.
    const bool bucket_ok = target.bucket.size() >= 3 && target.bucket.size() <= 63 &&
                           std::all_of(target.bucket.begin(), target.bucket.end(), [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
                           });
    if (!bucket_ok) {
        return "'" + target.bucket + "' is not a bucket name (3 to 63 lower-case letters, digits, dots, hyphens)";
    }
    return target;
}

std::optional<std::string> s3_request_url(std::string_view endpoint, const S3Target& target, S3Addressing addressing)
{
    const auto scheme_end = endpoint.find("://");
    if (scheme_end == std::string_view::npos ||
        (endpoint.substr(0, scheme_end) != "https" && endpoint.substr(0, scheme_end) != "http")) {
        return std::nullopt;
    }
    const std::string_view scheme = endpoint.substr(0, scheme_end + 3);
    std::string_view rest = endpoint.substr(scheme_end + 3);
    const auto path_start = rest.find('/');
    const std::string_view authority = rest.substr(0, path_start);
    std::string_view base_path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
    while (!base_path.empty() && base_path.back() == '/') {
        base_path.remove_suffix(1);
    }
    if (authority.empty() || authority.find_first_of("?#@") != std::string_view::npos) {
        return std::nullopt;
    }
    const std::string object = target.key.empty() ? "/?max-keys=0" : "/" + encode_key(target.key);
    // An address has no subdomains: there, as botocore does, path style.
    const std::string_view host = authority.front() == '[' ? authority : authority.substr(0, authority.find(':'));
    const bool is_address = host.front() == '[' || host.find_first_not_of("0123456789.") == std::string_view::npos;
    if (addressing == S3Addressing::virtual_hosted && !is_address) {
        return std::string{scheme} + target.bucket + "." + std::string{authority} + std::string{base_path} + object;
    }
    return std::string{scheme} + std::string{authority} + std::string{base_path} + "/" + target.bucket +
           (target.key.empty() ? "?max-keys=0" : object);
}

std::string s3_error_code(std::string_view body)
{
    const auto open = body.find("<Code>");
    if (open == std::string_view::npos) {
        return "";
    }
    const auto from = open + 6;
    const auto close = body.find("</Code>", from);
    if (close == std::string_view::npos || close - from > 64 || close == from) {
        return "";
    }
    const std::string_view code = body.substr(from, close - from);
    return std::all_of(code.begin(), code.end(), is_code_character) ? std::string{code} : "";
}

std::string_view cause_name(S3Cause cause)
{
    switch (cause) {
        case S3Cause::ok:
            return "ok";
        case S3Cause::policy:
            return "policy";
        case S3Cause::key:
            return "key";
        case S3Cause::signature:
            return "signature";
        case S3Cause::clock:
            return "clock";
        case S3Cause::not_found:
            return "not-found";
        case S3Cause::endpoint:
            return "endpoint";
        case S3Cause::other:
            return "other";
    }
    return "other";
}

S3Verdict classify_s3_answer(const S3Answer& answer, const S3Context& context, SystemTime now)
{
    const std::string& code = answer.error_code;
    const long status = answer.http_status;
    const std::string head = status_and_code(answer) + ": ";
    if (status == 0) {
        return {S3Cause::endpoint,
                "no answer from " + context.endpoint + ": " + answer.transport_error +
                    ". Is --s3-endpoint right (CoreWeave: https://cwobject.com, or http://cwlota.com inside CKS)? "
                    "A private CA needs --ca-file; a proxy, the https_proxy and no_proxy variables"};
    }
    if ((status >= 200 && status < 300) || (status == 416 && code == "InvalidRange" && !context.target.key.empty())) {
        return {S3Cause::ok, "HTTP " + std::to_string(status) + ": the served keys " + context.masked_key_id + " may " +
                                 what(context.target) + (status == 416 ? " (the object is empty)" : "")};
    }
    // A signature more than 15 minutes off is refused before anything else
    // is looked at, whatever code an S3-compatible store gives it.
    const bool skewed = answer.server_date && std::chrono::abs(now - *answer.server_date) > k_s3_max_skew;
    if (code == "RequestTimeTooSkewed" || ((status == 403 || status == 400) && skewed)) {
        return {S3Cause::clock, head + "the clock: " + clock_comparison(answer, now) + "; S3 refuses signatures over " +
                                    format_duration(k_s3_max_skew) + " off: fix the node's time (NTP)"};
    }
    if (code == "AccessDenied") {
        return {S3Cause::policy, head +
                                     "denied by a bucket or organization policy: the keys are valid (S3 accepted "
                                     "their signature); " +
                                     policy_advice(context)};
    }
    if (code == "InvalidAccessKeyId") {
        return {S3Cause::key, head + "the key id " + context.masked_key_id + " is not known to " + context.endpoint +
                                  ": keys of another organization or endpoint (is --s3-endpoint the one the sidecar's "
                                  "keys are for?), or revoked"};
    }
    if (code == "InvalidToken" || code == "ExpiredToken" || code == "TokenRefreshRequired") {
        return {S3Cause::key, head + "the session token served with " + context.masked_key_id +
                                  " is refused: expired, or not from this endpoint's issuer (see `cwcreds inspect "
                                  "--sidecar` for the sidecar's last exchange)"};
    }
    if (code == "SignatureDoesNotMatch") {
        return {S3Cause::signature,
                head + "the key id " + context.masked_key_id +
                    " is known but the signature is not: the secret served with it is wrong, or something between "
                    "here and S3 (a proxy) changed the request"};
    }
    if (code == "AuthorizationHeaderMalformed" || code == "InvalidRegion") {
        return {S3Cause::signature, head + "signed for region " + context.region +
                                        ", which this endpoint does not take: set --s3-region (or AWS_REGION)"};
    }
    if (code == "NoSuchBucket" || (status == 404 && context.target.key.empty() && code.empty())) {
        return {S3Cause::not_found, head + "there is no bucket " + context.target.bucket + " at " + context.endpoint +
                                        ": check the name, and that the endpoint is the bucket's"};
    }
    if (code == "NoSuchKey" || status == 404) {
        return {S3Cause::not_found, head + "no object " + context.target.key + " in bucket " + context.target.bucket +
                                        " (the bucket answered: the keys work)"};
    }
    if (code == "PermanentRedirect" || code == "TemporaryRedirect" || (status >= 300 && status < 400)) {
        return {S3Cause::endpoint, head +
                                       "the bucket is served at another endpoint: set --s3-endpoint (and "
                                       "--s3-region) to the bucket's"};
    }
    if (status >= 500) {
        return {S3Cause::endpoint,
                head + "the endpoint failed on its side; try again, and check the provider's status"};
    }
    return {S3Cause::other, head + "not an answer inspect can explain" +
                                (code.empty() ? " (no error code came back)" : "") + "; " +
                                clock_comparison(answer, now)};
}

}  // namespace cw
