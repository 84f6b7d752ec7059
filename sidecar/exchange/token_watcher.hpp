// Noticing token rotations: inotify on the token's directory, plus a timer.
//
// Watching the token file itself fails with kubelet: the watch follows the
// symlink to the old real file, which is deleted at the first rotation. So
// the directory is watched, and any event there (create, move, delete,
// close-after-write, attribute change) triggers a re-read; contents decide
// whether anything changed. A periodic re-read covers platforms where
// events are missed and directories that do not exist yet.
#pragma once

#include <atomic>
#include <vector>

#include "common/clock.hpp"
#include "sidecar/exchange/token_source.hpp"

namespace cw {

class TokenWatcher {
public:
    TokenWatcher(std::vector<TokenSource*> sources, Millis poll_interval);
    ~TokenWatcher();
    TokenWatcher(const TokenWatcher&) = delete;
    TokenWatcher& operator=(const TokenWatcher&) = delete;

    // Runs until stop(); call on its own thread.
    void run();
    void stop();

    // Last time the loop went round, for /healthz.
    [[nodiscard]] std::chrono::steady_clock::time_point heartbeat() const { return m_heartbeat.load(); }

private:
    void add_missing_watches();
    void reload_all();

    std::vector<TokenSource*> m_sources;
    Millis m_poll_interval;
    int m_inotify_fd = -1;
    int m_stop_fd = -1;
    std::vector<int> m_watches;  // one per source directory, -1 while missing
    std::atomic<std::chrono::steady_clock::time_point> m_heartbeat;
};

}  // namespace cw
