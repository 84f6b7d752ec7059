#include "sidecar/exchange/token_watcher.hpp"

#include <array>
#include <poll.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/logging.hpp"

namespace cw {

namespace {

constexpr std::uint32_t k_directory_events =
    IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

// The heartbeat must advance even when nothing happens, so /healthz can tell
// a stuck loop from a quiet one.
constexpr Millis k_max_sleep{5000};

}  // namespace

TokenWatcher::TokenWatcher(std::vector<TokenSource*> sources, Millis poll_interval)
    : m_sources(std::move(sources)), m_poll_interval(poll_interval), m_watches(m_sources.size(), -1),
      m_heartbeat(std::chrono::steady_clock::now())
{
    m_inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    m_stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_stop_fd < 0) {
        throw std::runtime_error("eventfd failed");
    }
    if (m_inotify_fd < 0) {
        log_event(spdlog::level::warn, "token watch unavailable, re-reading on a timer only",
                  {{"interval", std::to_string(m_poll_interval.count()) + "ms"}});
    }
    add_missing_watches();
}

TokenWatcher::~TokenWatcher()
{
    if (m_inotify_fd >= 0) {
        ::close(m_inotify_fd);
    }
    ::close(m_stop_fd);
}

void TokenWatcher::add_missing_watches()
{
    if (m_inotify_fd < 0) {
        return;
    }
    for (std::size_t i = 0; i < m_sources.size(); ++i) {
        if (m_watches[i] >= 0) {
            continue;
        }
        const auto directory = m_sources[i]->file().parent_path();
        m_watches[i] = inotify_add_watch(m_inotify_fd, directory.empty() ? "." : directory.c_str(),
                                         k_directory_events);
        if (m_watches[i] >= 0) {
            log_event(spdlog::level::debug, "token directory watched", {{"dir", directory.string()}});
        }
    }
}

void TokenWatcher::reload_all()
{
    for (TokenSource* source : m_sources) {
        source->reload();
    }
}

void TokenWatcher::run()
{
    auto next_poll = std::chrono::steady_clock::now() + m_poll_interval;
    for (;;) {
        m_heartbeat = std::chrono::steady_clock::now();
        const auto until_poll = std::chrono::duration_cast<Millis>(next_poll - std::chrono::steady_clock::now());
        const auto timeout = std::clamp(until_poll, Millis{0}, k_max_sleep);
        std::array<pollfd, 2> fds{pollfd{m_stop_fd, POLLIN, 0}, pollfd{m_inotify_fd, POLLIN, 0}};
        const int ready = ::poll(fds.data(), m_inotify_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
        if ((fds[0].revents & POLLIN) != 0) {
            return;
        }
        bool directory_changed = false;
        if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
            // Drain every queued event; one re-read covers them all.
            alignas(inotify_event) std::array<char, 4096> buffer{};
            while (::read(m_inotify_fd, buffer.data(), buffer.size()) > 0) {
                directory_changed = true;
            }
            // A deleted or moved directory drops its watch: re-add on the next poll.
            for (std::size_t i = 0; i < m_watches.size(); ++i) {
                if (m_watches[i] >= 0 && !std::filesystem::exists(m_sources[i]->file().parent_path())) {
                    inotify_rm_watch(m_inotify_fd, m_watches[i]);
                    m_watches[i] = -1;
                }
            }
        }
        const bool poll_due = std::chrono::steady_clock::now() >= next_poll;
        if (poll_due) {
            add_missing_watches();
            next_poll = std::chrono::steady_clock::now() + m_poll_interval;
        }
        if (directory_changed || poll_due) {
            reload_all();
        }
    }
}

void TokenWatcher::stop()
{
    const std::uint64_t one = 1;
    (void)::write(m_stop_fd, &one, sizeof one);
}

}  // namespace cw
