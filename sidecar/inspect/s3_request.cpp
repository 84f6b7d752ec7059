#include "sidecar/inspect/s3_request.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>

#include <curl/curl.h>

#include "common/time_format.hpp"

namespace cw {

namespace {

// An error body is well under this; a 2xx body is not needed at all (a
// store that ignores Range could send a whole object), so the transfer
// stops here and the status already read stands.
constexpr std::size_t k_max_body_bytes = 64 * 1024;
constexpr long k_connect_timeout_ms = 5'000;
constexpr long k_total_timeout_ms = 20'000;
// SHA-256 of the empty body: S3 wants x-amz-content-sha256 on every signed
// request, and libcurl 7.88 does not add it; the real hash (rather than
// UNSIGNED-PAYLOAD) is what any S3-compatible store accepts.
constexpr const char* k_empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct EasyDeleter {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct Transfer {
    std::string body;
    bool truncated = false;
    std::string date;
    std::string error_code_header;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user)
{
    auto* transfer = static_cast<Transfer*>(user);
    const std::size_t bytes = size * count;
    if (transfer->body.size() + bytes > k_max_body_bytes) {
        transfer->truncated = true;
        return 0;  // CURLE_WRITE_ERROR: enough has been read
    }
    transfer->body.append(data, bytes);
    return bytes;
}

// The value of header `name` (lower case) if `line` is that header.
std::optional<std::string> header_value(std::string_view line, std::string_view name)
{
    if (line.size() <= name.size() || line[name.size()] != ':') {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) {
            return std::nullopt;
        }
    }
    std::string_view value = line.substr(name.size() + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
        value.remove_suffix(1);
    }
    return std::string{value};
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user)
{
    auto* transfer = static_cast<Transfer*>(user);
    const std::string_view line{data, size * count};
    if (auto date = header_value(line, "date")) {
        transfer->date = std::move(*date);
    } else if (auto code = header_value(line, "x-amz-error-code")) {
        // Some S3-compatible stores name the error here too; the body wins.
        transfer->error_code_header = s3_error_code("<Code>" + *code + "</Code>");
    }
    return size * count;
}

}  // namespace

S3Answer send_s3_request(const S3Request& request)
{
    S3Answer answer;
    const std::unique_ptr<CURL, EasyDeleter> easy{curl_easy_init()};
    if (!easy) {
        answer.transport_error = "curl_easy_init failed";
        return answer;
    }
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    const auto add_header = [&headers](const std::string& header) {
        if (curl_slist* list = curl_slist_append(headers.get(), header.c_str()); list != nullptr) {
            (void)headers.release();
            headers.reset(list);
        }
    };
    add_header(std::string{"x-amz-content-sha256: "} + k_empty_sha256);
    if (!request.session_token.empty()) {
        add_header("X-Amz-Security-Token: " + request.session_token);
    }
    if (request.object) {
        add_header("Range: bytes=0-0");
    }
    // "aws:amz:REGION:s3": AWS4-HMAC-SHA256 with X-Amz-* headers, scoped to
    // the region and service S3 checks.
    const std::string sigv4 = "aws:amz:" + request.region + ":s3";
    Transfer transfer;
    std::array<char, CURL_ERROR_SIZE> error_buffer{};
    CURL* handle = easy.get();
    curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(handle, CURLOPT_AWS_SIGV4, sigv4.c_str());
    // Separately, not as USERPWD: a secret may hold any character, ':' too.
    curl_easy_setopt(handle, CURLOPT_USERNAME, request.access_key_id.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, request.secret_access_key.c_str());
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(handle, CURLOPT_USERAGENT, "cwcreds/" CWCREDS_VERSION " inspect");
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is a verdict (another endpoint)
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, k_connect_timeout_ms);
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, k_total_timeout_ms);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer.data());
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
    if (!request.ca_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_CAINFO, request.ca_file.c_str());
    }

    const CURLcode code = curl_easy_perform(handle);
    long status = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && transfer.truncated && status != 0)) {
        // Not sanitize_excerpt: it would hide the host name, which is what a
        // DNS or TLS failure is about, and curl's text holds no credential
        // (they are never in the URL).
        answer.transport_error = curl_easy_strerror(code);
        if (error_buffer[0] != '\0') {
            answer.transport_error += std::string{" ("} + error_buffer.data() + ")";
        }
        std::replace_if(
            answer.transport_error.begin(), answer.transport_error.end(),
            [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
        return answer;
    }
    answer.http_status = status;
    answer.error_code = s3_error_code(transfer.body);
    if (answer.error_code.empty()) {
        answer.error_code = transfer.error_code_header;
    }
    if (!transfer.date.empty()) {
        answer.server_date = parse_http_date(transfer.date);
    }
    return answer;
}

}  // namespace cw
