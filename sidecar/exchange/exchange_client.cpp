// The libcurl exchange client.
//
// Each exchange runs on a curl multi handle so that cancel() can wake it with
// curl_multi_wakeup: shutdown must finish within 2 s even while the upstream
// hangs. TLS verification is always on (libcurl's default, never turned
// off); --ca-file replaces the trust store. Proxy variables (https_proxy,
// no_proxy) work as libcurl reads them by default. Answers are capped in size
// so a broken or hostile upstream cannot balloon the sidecar's memory.
#include "sidecar/exchange/exchange_client.hpp"

#include <atomic>
#include <charconv>
#include <cstring>
#include <mutex>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "common/redact.hpp"
#include "common/time_format.hpp"
#include "sidecar/exchange/upstream_answer.hpp"

namespace cw {

namespace {

// What to check for the transport failures a setup causes; appended to
// libcurl's own reason, which names the OS or TLS library error.
std::string transfer_hint(CURLcode code, const std::string& ca_file)
{
    switch (code) {
        case CURLE_PEER_FAILED_VERIFICATION:
            return ca_file.empty() ? " (the upstream's certificate is not signed by a CA in the system trust store: "
                                     "give its CA bundle with --ca-file)"
                                   : " (the upstream's certificate is not signed by a CA in --ca-file " + ca_file + ")";
        case CURLE_SSL_CACERT_BADFILE:
            return " (--ca-file " + ca_file + ": missing, unreadable or without a PEM certificate)";
        case CURLE_COULDNT_RESOLVE_HOST:
            return " (check --endpoint's host name and the pod's DNS)";
        case CURLE_COULDNT_CONNECT:
            return " (nothing accepted the connection: check --endpoint and any egress NetworkPolicy)";
        case CURLE_OPERATION_TIMEDOUT:
            return " (no answer in time: check the network path, or raise --connect-timeout / --exchange-timeout)";
        default:
            return {};
    }
}

constexpr std::size_t k_max_answer_bytes = 64 * 1024;
constexpr Millis k_max_retry_after{5 * 60 * 1000};

struct EasyDeleter {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
    void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct SlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// What the libcurl callbacks collect during one transfer.
struct Transfer {
    std::string body;
    bool too_large = false;
    std::string retry_after;
    std::string date;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user)
{
    auto* transfer = static_cast<Transfer*>(user);
    const std::size_t bytes = size * count;
    if (transfer->body.size() + bytes > k_max_answer_bytes) {
        transfer->too_large = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    transfer->body.append(data, bytes);
    return bytes;
}

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
        text.remove_suffix(1);
    }
    return text;
}

bool header_is(std::string_view line, std::string_view name)
{
    if (line.size() <= name.size() || line[name.size()] != ':') {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) {
            return false;
        }
    }
    return true;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user)
{
    auto* transfer = static_cast<Transfer*>(user);
    const std::string_view line{data, size * count};
    if (header_is(line, "retry-after")) {
        transfer->retry_after = trim(line.substr(12));
    } else if (header_is(line, "date")) {
        transfer->date = trim(line.substr(5));
    }
    return size * count;
}

class ExchangeClient final : public Exchanger {
public:
    ExchangeClient(UpstreamSettings settings, const Clock& clock)
        : m_settings(std::move(settings)), m_clock(clock), m_multi(curl_multi_init())
    {
        if (!m_multi) {
            throw std::runtime_error("curl_multi_init failed");
        }
    }

    ExchangeResult exchange(const std::string& token) override
    {
        const SteadyTime sent = m_clock.steady_now();
        ExchangeResult result = run(token);
        result.latency = std::chrono::duration_cast<Millis>(m_clock.steady_now() - sent);
        if (result.credentials) {
            result.credentials->sent = sent;
        }
        return result;
    }

    void cancel() override
    {
        m_cancelled = true;
        curl_multi_wakeup(m_multi.get());
    }

private:
    ExchangeResult run(const std::string& token)
    {
        Transfer transfer;
        EasyHandle easy{curl_easy_init()};
        if (!easy) {
            return failure(ExchangeOutcome::retryable, "curl_easy_init failed");
        }
        std::string request_body;
        HeaderList headers;
        const auto append_header = [&headers](const std::string& header) {
            curl_slist* list = curl_slist_append(headers.get(), header.c_str());
            if (list != nullptr) {
                (void)headers.release();
                headers.reset(list);
            }
        };
        append_header("Accept: application/json");
        if (m_settings.mode == ExchangeMode::container_credentials) {
            // The raw JWT, no "Bearer " prefix: what the CoreWeave endpoint expects.
            append_header("Authorization: " + token);
        } else {
            request_body =
                nlohmann::json{
                    {"durationSeconds", std::chrono::duration_cast<std::chrono::seconds>(m_settings.duration).count()},
                    {"orgId", m_settings.org_id},
                    {"oidcToken", token},
                    {"attributes", {{"name", "cwcreds"}}},
                }
                    // An --org-id that is not UTF-8 must not throw on the refresher thread.
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            append_header("Content-Type: application/json");
            curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, request_body.c_str());
            curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(request_body.size()));
        }
        std::array<char, CURL_ERROR_SIZE> error_buffer{};
        curl_easy_setopt(easy.get(), CURLOPT_URL, m_settings.endpoint.c_str());
        curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(easy.get(), CURLOPT_USERAGENT, "cwcreds/" CWCREDS_VERSION);
        curl_easy_setopt(easy.get(), CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(easy.get(), CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_settings.connect_timeout.count()));
        curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(m_settings.exchange_timeout.count()));
        curl_easy_setopt(easy.get(), CURLOPT_MAXFILESIZE, static_cast<long>(k_max_answer_bytes));
        curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, error_buffer.data());
        curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &transfer);
        curl_easy_setopt(easy.get(), CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, &transfer);
        if (!m_settings.ca_file.empty()) {
            curl_easy_setopt(easy.get(), CURLOPT_CAINFO, m_settings.ca_file.c_str());
        }

        const CURLcode code = perform(easy.get());
        if (m_cancelled) {
            return failure(ExchangeOutcome::cancelled, "cancelled by shutdown");
        }
        ExchangeResult result;
        curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &result.http_status);
        const SystemTime now = m_clock.now();
        if (!transfer.date.empty()) {
            result.server_date = parse_http_date(transfer.date);
        }
        if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
            result.outcome = ExchangeOutcome::malformed;
            result.detail = "answer larger than " + std::to_string(k_max_answer_bytes) + " bytes";
            return result;
        }
        if (code != CURLE_OK) {
            result.outcome = ExchangeOutcome::retryable;
            result.detail = sanitize_excerpt(std::string{curl_easy_strerror(code)} +
                                             (error_buffer[0] != '\0' ? std::string{": "} + error_buffer.data() : "")) +
                            transfer_hint(code, m_settings.ca_file);
            return result;
        }
        if (result.http_status < 200 || result.http_status > 299) {
            result.outcome = classify_http_status(result.http_status);
            // An HTTP-date is the upstream's clock, like its Date: compare the two.
            result.retry_after = parse_retry_after(transfer.retry_after, result.server_date.value_or(now));
            result.detail = "HTTP " + std::to_string(result.http_status) + ": " + sanitize_excerpt(transfer.body);
            return result;
        }
        // "Already expired?" is the upstream's call, so it is judged on the
        // upstream's clock when it told us the time.
        auto parsed = parse_upstream_answer(m_settings.mode, transfer.body, result.server_date.value_or(now));
        if (auto* error = std::get_if<AnswerError>(&parsed)) {
            result.outcome = ExchangeOutcome::malformed;
            result.detail = error->reason;
            return result;
        }
        result.outcome = ExchangeOutcome::ok;
        result.credentials = std::get<Credentials>(std::move(parsed));
        result.credentials->obtained_at = now;
        result.credentials->upstream_date = result.server_date;
        return result;
    }

    // Runs the transfer, waking every second at most, or at once on cancel().
    CURLcode perform(CURL* easy)
    {
        // One exchange at a time by design (the refresher is single-flight),
        // but the one-shot commands and tests may share a client: serialise.
        const std::lock_guard lock{m_mutex};
        curl_multi_add_handle(m_multi.get(), easy);
        CURLcode code = CURLE_OK;
        int running = 1;
        while (running > 0 && !m_cancelled) {
            if (curl_multi_perform(m_multi.get(), &running) != CURLM_OK) {
                code = CURLE_FAILED_INIT;
                break;
            }
            if (running > 0) {
                curl_multi_poll(m_multi.get(), nullptr, 0, 1000, nullptr);
            }
        }
        int queued = 0;
        while (CURLMsg* message = curl_multi_info_read(m_multi.get(), &queued)) {
            if (message->msg == CURLMSG_DONE && message->easy_handle == easy) {
                code = message->data.result;
            }
        }
        curl_multi_remove_handle(m_multi.get(), easy);
        return code;
    }

    ExchangeResult failure(ExchangeOutcome outcome, std::string detail) const
    {
        ExchangeResult result;
        result.outcome = outcome;
        result.detail = std::move(detail);
        return result;
    }

    UpstreamSettings m_settings;
    const Clock& m_clock;
    MultiHandle m_multi;
    std::mutex m_mutex;
    std::atomic<bool> m_cancelled{false};
};

// libcurl's global state must be set up once, before any thread uses it.
void global_curl_init()
{
    static const bool initialised = [] {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return true;
    }();
    (void)initialised;
}

}  // namespace

std::string_view outcome_name(ExchangeOutcome outcome)
{
    switch (outcome) {
        case ExchangeOutcome::ok:
            return "ok";
        case ExchangeOutcome::rejected:
            return "rejected";
        case ExchangeOutcome::retryable:
            return "retryable";
        case ExchangeOutcome::malformed:
            return "malformed";
        case ExchangeOutcome::cancelled:
            return "cancelled";
    }
    return "unknown";
}

ExchangeOutcome classify_http_status(long status)
{
    if (status == 408 || status == 429 || status >= 500 || status < 400) {
        return ExchangeOutcome::retryable;
    }
    return ExchangeOutcome::rejected;
}

std::optional<Millis> parse_retry_after(std::string_view value, SystemTime now)
{
    if (value.empty()) {
        return std::nullopt;
    }
    Millis delay{0};
    long long seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error == std::errc{} && end == value.data() + value.size() && seconds >= 0) {
        delay = std::chrono::seconds{std::min(seconds, 86'400LL)};
    } else if (const auto date = parse_http_date(value)) {
        delay = std::max(Millis{0}, std::chrono::duration_cast<Millis>(*date - now));
    } else {
        return std::nullopt;
    }
    // A hostile or broken upstream must not park the sidecar for hours.
    return std::min(delay, k_max_retry_after);
}

std::unique_ptr<Exchanger> make_exchange_client(const UpstreamSettings& settings, const Clock& clock)
{
    global_curl_init();
    return std::make_unique<ExchangeClient>(settings, clock);
}

}  // namespace cw
