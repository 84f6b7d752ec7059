// Who may read credentials: callers presenting the pod's token (current or
// previous), or the content of an accepted token file (--accept-token-file,
// a mounted Secret for SDKs that read AWS_CONTAINER_AUTHORIZATION_TOKEN from
// the environment only).
//
// A refusal costs the caller nothing but could cost us a file read (the
// caller may have read a rotated file before our watcher did) and a log
// line, so both are limited: a flood of wrong tokens costs a realpath() and
// a stat() per file and request, re-reads a file at once only when it changed and
// otherwise at most once per second, and writes one warning per reason and
// window, carrying how many refusals it stands for. Every comparison is of SHA-256 digests in constant time;
// no presented value is ever logged.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "sidecar/serve/metrics.hpp"
#include "sidecar/exchange/token_source.hpp"

namespace cw {

struct CallerRefusal {
    int status;  // 401, 403, 503
    std::string code;
    std::string message;
};

using CallerVerdict = std::variant<CallerKind, CallerRefusal>;

struct CallerAuthLimits {
    Millis reread_interval{1000};  // per file
    Millis warning_interval{10'000};
};

class CallerAuth {
public:
    CallerAuth(TokenSource& pod_tokens, std::vector<TokenSource*> accepted, const Clock& clock = real_clock(),
               CallerAuthLimits limits = {});

    // `authorization` is nullopt when the header is absent.
    CallerVerdict check(const std::optional<std::string_view>& authorization);

    [[nodiscard]] const std::vector<TokenSource*>& accepted() const { return m_accepted; }

private:
    // One rate-limited action: at most once per interval, across threads.
    class Limiter {
    public:
        explicit Limiter(Millis interval) : m_interval(interval) {}
        Limiter(const Limiter& other) : m_interval(other.m_interval) {}
        bool allow(SystemTime now);

    private:
        Millis m_interval;
        std::atomic<std::int64_t> m_next_ms{std::numeric_limits<std::int64_t>::min()};
    };

    void reload(std::size_t index, SystemTime now);
    std::optional<CallerKind> match(std::string_view presented) const;
    // One warning stream per reason, so a flood of one kind does not hide the other.
    enum class Reason { missing, mismatch };
    void warn(Reason reason, std::size_t presented_length, SystemTime now);

    TokenSource& m_pod_tokens;
    std::vector<TokenSource*> m_accepted;
    const Clock& m_clock;
    std::vector<Limiter> m_reread;  // [0]: pod tokens, then one per accepted file
    std::array<Limiter, 2> m_warning;
    std::array<std::atomic<std::uint64_t>, 2> m_suppressed{};
};

}  // namespace cw
