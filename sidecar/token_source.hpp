// The projected service-account token, as the file currently says.
//
// kubelet rotates the token by swapping a `..data` symlink; this class only
// reads (reload() compares contents, not timestamps) and remembers the
// previous token so callers that read the file a moment earlier or later
// than the sidecar are both accepted. TokenWatcher decides when to reload.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/digest.hpp"

namespace cw {

enum class TokenChange { unchanged, changed, unavailable };

class TokenSource {
public:
    explicit TokenSource(std::filesystem::path file, const Clock& clock = real_clock());

    // Re-reads the file. On a change, the listener runs (outside the lock).
    TokenChange reload();

    // Called after every change; set before any thread calls reload().
    void set_listener(std::function<void()> listener);

    [[nodiscard]] std::optional<std::string> current() const;

    // Whether a token has ever been read; cheaper than current() (no copy).
    [[nodiscard]] bool available() const;

    // Whether `presented` equals the current or the previous token, in constant time.
    [[nodiscard]] bool accepts(std::string_view presented) const;

    // Why the token is unavailable ("No such file or directory", "empty", ...).
    [[nodiscard]] std::string problem() const;

    [[nodiscard]] std::optional<SystemTime> last_change() const;

    [[nodiscard]] const std::filesystem::path& file() const { return m_file; }

private:
    const std::filesystem::path m_file;
    const Clock& m_clock;
    std::function<void()> m_listener;

    mutable std::mutex m_mutex;
    std::optional<std::string> m_current;
    std::optional<Sha256> m_current_digest;
    std::optional<Sha256> m_previous_digest;
    std::string m_problem = "not read yet";
    std::optional<SystemTime> m_last_change;
};

}  // namespace cw
