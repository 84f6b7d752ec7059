// The projected service-account token, as the file currently says.
//
// kubelet rotates the token by swapping a `..data` symlink; this class only
// reads (reload() compares contents, not timestamps) and remembers the
// previous token so callers that read the file a moment earlier or later
// than the sidecar are both accepted, until that token's own `exp`.
// TokenWatcher decides when to reload; the refresher and the server reload
// too, so reloads are serialised: a slow read can never commit an older
// token over a newer one.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/digest.hpp"

namespace cw {

enum class TokenChange { unchanged, changed, unavailable };

// How a file is judged. The pod's token keeps its previous value acceptable
// (callers and sidecar read a rotation at slightly different moments) and its
// last good value while the file cannot be read (kubelet keeps that token
// valid; a file missing mid-rotation must not stop the next exchange). A
// static caller token (a mounted Secret) does neither: replacing the Secret
// revokes the old value at once, and so does emptying, deleting or
// spoiling the file (fail closed).
struct TokenRules {
    std::size_t min_length = 1;
    bool accept_previous = true;
    bool keep_last_good = true;
};

class TokenSource {
public:
    explicit TokenSource(std::filesystem::path file, const Clock& clock = real_clock(), TokenRules rules = {});

    // Re-reads the file. On a change, the listener runs (outside the locks).
    TokenChange reload();

    // Called after every change; set before any thread calls reload().
    void set_listener(std::function<void()> listener);

    [[nodiscard]] std::optional<std::string> current() const;

    // Whether a token has ever been read; cheaper than current() (no copy).
    [[nodiscard]] bool available() const;

    // Whether `presented` equals the current token, or the previous one
    // while its `exp` (if it is a JWT) has not passed, in constant time.
    [[nodiscard]] bool accepts(std::string_view presented) const;

    // Why the token is unavailable ("No such file or directory", "empty", ...).
    [[nodiscard]] std::string problem() const;

    [[nodiscard]] std::optional<SystemTime> last_change() const;

    [[nodiscard]] const std::filesystem::path& file() const { return m_file; }

    // Whether the file looks different from when it was last read: another
    // real path (symlinks resolved), inode, size or modification time. A
    // realpath() and a stat(), no read, so a caller presenting an unknown
    // token can cheaply ask whether a rotation it saw first is worth a re-read.
    [[nodiscard]] bool changed_since_read() const;

    // How many times the file has been read, for tests and rate limits.
    [[nodiscard]] std::uint64_t reads() const { return m_reads.load(); }

private:
    const std::filesystem::path m_file;
    const Clock& m_clock;
    const TokenRules m_rules;
    std::atomic<std::uint64_t> m_reads{0};
    struct Stamp {
        // kubelet writes each token into a new `..<timestamp>.<random>`
        // directory, so the resolved path differs across every rotation. The
        // rest can repeat: a filesystem may give the new file the inode
        // number of the one deleted a rotation earlier, JWTs of one issuer
        // have one length, and mtimes are as coarse as the filesystem's clock
        // (a second on some), so without the path two rotations in one tick
        // look like none and a caller's new token waits for the re-read limit.
        std::string resolved;
        unsigned long long device = 0, inode = 0;
        long long size = -1, mtime_ns = 0;
        bool operator==(const Stamp&) const = default;
    };
    static Stamp stamp_of(const std::filesystem::path& file);
    Stamp m_stamp;  // guarded by m_mutex
    std::function<void()> m_listener;

    std::mutex m_reload_mutex;  // held from read to commit
    mutable std::mutex m_mutex;
    std::optional<std::string> m_current;
    std::optional<Sha256> m_current_digest;
    std::optional<SystemTime> m_current_expiry;
    std::optional<Sha256> m_previous_digest;
    std::optional<SystemTime> m_previous_expiry;
    std::string m_problem = "not read yet";
    std::optional<SystemTime> m_last_change;
};

}  // namespace cw
