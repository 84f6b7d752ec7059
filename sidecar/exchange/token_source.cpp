#include "sidecar/exchange/token_source.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <sys/stat.h>

#include "common/file_reader.hpp"
#include "common/jwt_claims.hpp"

namespace cw {

namespace {

// Projected tokens are a few KiB; anything this large is not one.
constexpr std::size_t k_max_token_bytes = 64 * 1024;

// The token goes verbatim into an HTTP header and a JSON body: a line break
// inside it would let the file inject headers (botocore refuses such values
// anyway), and bytes that are not ASCII are no JWT and no valid JSON string.
bool has_control_or_non_ascii(const std::string& token)
{
    return std::any_of(token.begin(), token.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte >= 0x7F;
    });
}

std::optional<SystemTime> expiry_of(const std::string& token)
{
    const auto decoded = decode_jwt_claims(token);
    const auto* claims = std::get_if<JwtClaims>(&decoded);
    return claims != nullptr ? claims->expires_at : std::nullopt;
}

}  // namespace

TokenSource::TokenSource(std::filesystem::path file, const Clock& clock, TokenRules rules)
    : m_file(std::move(file)), m_clock(clock), m_rules(rules)
{
}

void TokenSource::set_listener(std::function<void()> listener)
{
    m_listener = std::move(listener);
}

TokenChange TokenSource::reload()
{
    std::unique_lock serialised{m_reload_mutex};
    std::optional<std::string> token;
    std::string problem;
    ++m_reads;
    const Stamp stamp = stamp_of(m_file);
    auto content = read_small_file(m_file, k_max_token_bytes);
    if (auto* error = std::get_if<FileError>(&content)) {
        problem = error->reason;
    } else {
        std::string text = trim_trailing_whitespace(std::get<std::string>(std::move(content)));
        if (text.empty()) {
            problem = "file is empty";
        } else if (has_control_or_non_ascii(text)) {
            problem = "file contains a line break, control character or non-ASCII byte inside the token";
        } else if (text.size() < m_rules.min_length) {
            problem = "shorter than " + std::to_string(m_rules.min_length) + " characters";
        } else {
            token = std::move(text);
        }
    }

    TokenChange change = TokenChange::unchanged;
    {
        const std::lock_guard lock{m_mutex};
        m_stamp = stamp;
        if (!token) {
            m_problem = std::move(problem);
            if (!m_rules.keep_last_good && m_current) {
                m_current.reset();
                m_current_digest.reset();
                m_current_expiry.reset();
                m_previous_digest.reset();
                m_previous_expiry.reset();
                m_last_change = m_clock.now();
            }
            return TokenChange::unavailable;
        }
        m_problem.clear();
        if (token != m_current) {
            m_previous_digest = m_rules.accept_previous ? m_current_digest : std::nullopt;
            m_previous_expiry = m_current_expiry;
            m_current_digest = sha256(*token);
            m_current_expiry = expiry_of(*token);
            m_current = std::move(token);
            m_last_change = m_clock.now();
            change = TokenChange::changed;
        }
    }
    serialised.unlock();
    if (change == TokenChange::changed && m_listener) {
        m_listener();
    }
    return change;
}

TokenSource::Stamp TokenSource::stamp_of(const std::filesystem::path& file)
{
    // Resolved first, then stat()ed by that name: a rotation in between gives
    // a stamp that matches no later one, which costs a read, never a miss.
    const std::unique_ptr<char, decltype(&std::free)> resolved{::realpath(file.c_str(), nullptr), &std::free};
    struct stat info {};
    if (!resolved || ::stat(resolved.get(), &info) != 0) {
        return {};
    }
    return {resolved.get(), static_cast<unsigned long long>(info.st_dev), static_cast<unsigned long long>(info.st_ino),
            static_cast<long long>(info.st_size),
            static_cast<long long>(info.st_mtim.tv_sec) * 1'000'000'000LL + info.st_mtim.tv_nsec};
}

bool TokenSource::changed_since_read() const
{
    const Stamp now = stamp_of(m_file);
    const std::lock_guard lock{m_mutex};
    return !(now == m_stamp);
}

std::optional<std::string> TokenSource::current() const
{
    const std::lock_guard lock{m_mutex};
    return m_current;
}

bool TokenSource::available() const
{
    const std::lock_guard lock{m_mutex};
    return m_current.has_value();
}

bool TokenSource::accepts(std::string_view presented) const
{
    const Sha256 digest = sha256(presented);
    const SystemTime now = m_clock.now();
    const std::lock_guard lock{m_mutex};
    // Both comparisons always run, so timing does not say which one matched.
    const bool current = m_current_digest && constant_time_equal(digest, *m_current_digest);
    const bool previous = m_previous_digest && constant_time_equal(digest, *m_previous_digest);
    const bool previous_unexpired = !m_previous_expiry || now < *m_previous_expiry;
    return current || (previous && previous_unexpired);
}

std::string TokenSource::problem() const
{
    const std::lock_guard lock{m_mutex};
    return m_problem;
}

std::optional<SystemTime> TokenSource::last_change() const
{
    const std::lock_guard lock{m_mutex};
    return m_last_change;
}

}  // namespace cw
