#include "sidecar/serve/caller_auth.hpp"

#include "common/logging.hpp"

namespace cw {

bool CallerAuth::Limiter::allow(SystemTime now)
{
    const std::int64_t now_ms = std::chrono::duration_cast<Millis>(now.time_since_epoch()).count();
    std::int64_t next = m_next_ms.load();
    // A wall clock stepped back by more than one interval must not silence
    // the action until it catches up again.
    const bool due = now_ms >= next || next - now_ms > m_interval.count();
    return due && m_next_ms.compare_exchange_strong(next, now_ms + m_interval.count());
}

CallerAuth::CallerAuth(TokenSource& pod_tokens, std::vector<TokenSource*> accepted, const Clock& clock,
                       CallerAuthLimits limits)
    : m_pod_tokens(pod_tokens),
      m_accepted(std::move(accepted)),
      m_clock(clock),
      m_reread(m_accepted.size() + 1, Limiter{limits.reread_interval}),
      m_warning{{Limiter{limits.warning_interval}, Limiter{limits.warning_interval}}}
{
}

void CallerAuth::reload(std::size_t index, SystemTime now)
{
    TokenSource& source = index == 0 ? m_pod_tokens : *m_accepted[index - 1];
    // A file that changed is read at once: changes come only as fast as
    // kubelet or the Secret rotate, and a kubelet rotation always looks
    // changed (its resolved path is new), however fast it comes. An
    // unchanged-looking one is re-read at most once per interval, in case a
    // plain file was rewritten in place keeping its size and time.
    if (source.changed_since_read() || m_reread[index].allow(now)) {
        source.reload();
    }
}

std::optional<CallerKind> CallerAuth::match(std::string_view presented) const
{
    // Every source is compared, whichever matches, so timing says nothing.
    const bool pod = m_pod_tokens.accepts(presented);
    bool accepted = false;
    for (const TokenSource* source : m_accepted) {
        accepted = source->accepts(presented) || accepted;
    }
    if (pod) {
        return CallerKind::pod_token;
    }
    if (accepted) {
        return CallerKind::accepted_token;
    }
    return std::nullopt;
}

void CallerAuth::warn(Reason reason, std::size_t presented_length, SystemTime now)
{
    const auto index = static_cast<std::size_t>(reason);
    if (!m_warning[index].allow(now)) {
        ++m_suppressed[index];
        return;
    }
    log_event(spdlog::level::warn, "caller rejected",
              {{"reason",
                reason == Reason::missing ? "no Authorization header" : "Authorization does not match the token file"},
               {"presented_length", static_cast<long>(presented_length)},
               {"suppressed_since_last", static_cast<long>(m_suppressed[index].exchange(0))}});
}

CallerVerdict CallerAuth::check(const std::optional<std::string_view>& authorization)
{
    const SystemTime now = m_clock.now();
    if (!m_pod_tokens.available()) {
        reload(0, now);
    }
    if (!m_pod_tokens.available()) {
        // Nothing to compare with yet: the caller is not wrong, we are not ready.
        return CallerRefusal{503, "CredentialsUnavailable",
                             "the pod's token file cannot be read yet: " + m_pod_tokens.problem()};
    }
    if (!authorization) {
        warn(Reason::missing, 0, now);
        return CallerRefusal{
            401, "MissingAuthorization",
            "send the pod's projected token as Authorization (set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"};
    }
    if (const auto kind = match(*authorization)) {
        if (*kind != CallerKind::accepted_token) {
            return *kind;
        }
        // A static token's file may have been emptied or deleted since it was
        // read, and that revokes it: the directory watch usually says so at
        // once, and this bounds it to a second (a stat() per file while
        // unchanged, a read at most once a second) if an event was missed.
        for (std::size_t i = 1; i < m_reread.size(); ++i) {
            reload(i, now);
        }
        if (const auto still = match(*authorization)) {
            return *still;
        }
    }
    // The caller may have read a rotated file before our watcher did.
    for (std::size_t i = 0; i < m_reread.size(); ++i) {
        reload(i, now);
    }
    if (const auto kind = match(*authorization)) {
        return *kind;
    }
    warn(Reason::mismatch, authorization->size(), now);
    return CallerRefusal{403, "InvalidAuthorization",
                         m_accepted.empty()
                             ? "Authorization does not match the pod's current or previous token"
                             : "Authorization matches neither the pod's current or previous token nor an "
                               "accepted token file"};
}

}  // namespace cw
