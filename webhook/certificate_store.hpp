// The webhook's serving certificate and key, re-read when their files change.
//
// cert-manager renews the Secret, and the kubelet swaps the mounted files
// (a `..data` symlink flip, both files at once); every TLS handshake asks
// this store for the pair, which first compares the files' identity (device,
// inode, size, modification time) with the pair it holds. A new pair is used
// only once it loads and the key matches the certificate: a half-written or
// mismatched pair keeps the old one serving and is logged.
#pragma once

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace cw {

struct KeyPair;

class CertificateStore {
public:
    // Loads both files now; throws std::runtime_error naming the file if it cannot.
    CertificateStore(std::filesystem::path cert_file, std::filesystem::path key_file);
    ~CertificateStore();
    CertificateStore(const CertificateStore&) = delete;
    CertificateStore& operator=(const CertificateStore&) = delete;

    // Makes every TLS handshake on `ctx` use the current pair.
    void attach(SSL_CTX& ctx);

    // Re-reads the files if they changed; false if a change could not be loaded.
    bool refresh();

    std::uint64_t reloads() const { return m_reloads.load(); }
    std::uint64_t failed_reloads() const { return m_failed.load(); }
    // The serving certificate's notAfter, in seconds since the epoch.
    std::int64_t not_after() const { return m_not_after.load(); }

private:
    struct Identity {
        dev_t device = 0;
        ino_t inode = 0;
        off_t size = 0;
        std::int64_t mtime_ns = 0;
        bool operator==(const Identity&) const = default;
    };
    static Identity identity_of(const std::filesystem::path& path);
    static int on_handshake(SSL* ssl, void* store);

    std::filesystem::path m_cert_file;
    std::filesystem::path m_key_file;
    mutable std::mutex m_mutex;
    std::shared_ptr<const KeyPair> m_pair;
    Identity m_cert_identity;
    Identity m_key_identity;
    std::atomic<std::uint64_t> m_reloads{0};
    std::atomic<std::uint64_t> m_failed{0};
    std::atomic<std::int64_t> m_not_after{0};
};

}  // namespace cw
