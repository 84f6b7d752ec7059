#include "webhook/certificate_store.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "common/logging.hpp"

namespace cw {

struct X509Deleter {
    void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct ChainDeleter {
    void operator()(STACK_OF(X509) * chain) const { sk_X509_pop_free(chain, X509_free); }
};
struct BioDeleter {
    void operator()(BIO* bio) const { BIO_free(bio); }
};

struct KeyPair {
    std::unique_ptr<X509, X509Deleter> cert;
    std::unique_ptr<STACK_OF(X509), ChainDeleter> chain;
    std::unique_ptr<EVP_PKEY, KeyDeleter> key;
    std::int64_t not_after = 0;
};

namespace {

// `flag` names the setting that gave the path, so the message says what to fix.
std::unique_ptr<BIO, BioDeleter> open_file(const std::filesystem::path& path, std::string_view flag)
{
    errno = 0;
    std::unique_ptr<BIO, BioDeleter> bio{BIO_new_file(path.c_str(), "r")};
    if (!bio) {
        // BIO_new_file is fopen underneath: errno says why.
        const int error = errno;
        ERR_clear_error();
        throw std::runtime_error{"cannot read " + path.string() + ": " +
                                 (error != 0 ? std::strerror(error) : "cannot be opened") + " (" + std::string{flag} +
                                 ": the webhook's TLS Secret is mounted there, e.g. by cert-manager)"};
    }
    return bio;
}

std::shared_ptr<const KeyPair> load(const std::filesystem::path& cert_file, const std::filesystem::path& key_file)
{
    auto pair = std::make_shared<KeyPair>();
    auto certs = open_file(cert_file, "--tls-cert-file");
    pair->cert.reset(PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr));
    if (!pair->cert) {
        ERR_clear_error();
        throw std::runtime_error{cert_file.string() + " holds no PEM certificate"};
    }
    pair->chain.reset(sk_X509_new_null());
    while (X509* next = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
        sk_X509_push(pair->chain.get(), next);
    }
    ERR_clear_error();  // the end of the file reads as an error
    auto key = open_file(key_file, "--tls-key-file");
    pair->key.reset(PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr));
    if (!pair->key) {
        ERR_clear_error();
        throw std::runtime_error{key_file.string() + " holds no PEM private key"};
    }
    if (X509_check_private_key(pair->cert.get(), pair->key.get()) != 1) {
        ERR_clear_error();
        throw std::runtime_error{key_file.string() + " is not the key of " + cert_file.string()};
    }
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(pair->cert.get()), &tm) == 1) {
        pair->not_after = static_cast<std::int64_t>(timegm(&tm));
    }
    return pair;
}

}  // namespace

CertificateStore::Identity CertificateStore::identity_of(const std::filesystem::path& path)
{
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return {};
    }
    return {info.st_dev, info.st_ino, info.st_size,
            static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

CertificateStore::CertificateStore(std::filesystem::path cert_file, std::filesystem::path key_file)
    : m_cert_file(std::move(cert_file)), m_key_file(std::move(key_file))
{
    m_cert_identity = identity_of(m_cert_file);
    m_key_identity = identity_of(m_key_file);
    m_pair = load(m_cert_file, m_key_file);
    m_not_after = m_pair->not_after;
}

CertificateStore::~CertificateStore() = default;

bool CertificateStore::refresh()
{
    const Identity cert = identity_of(m_cert_file);
    const Identity key = identity_of(m_key_file);
    std::lock_guard lock{m_mutex};
    if (cert == m_cert_identity && key == m_key_identity) {
        return true;
    }
    try {
        m_pair = load(m_cert_file, m_key_file);
    } catch (const std::exception& error) {
        // Remember the failed identities too: one log line per change, not
        // one per handshake, until the files change again.
        m_cert_identity = cert;
        m_key_identity = key;
        ++m_failed;
        log_event(spdlog::level::warn, "certificate reload failed, serving the previous one",
                  {{"error", error.what()}});
        return false;
    }
    m_cert_identity = cert;
    m_key_identity = key;
    m_not_after = m_pair->not_after;
    ++m_reloads;
    log_event(spdlog::level::info, "certificate reloaded", {{"not_after", std::to_string(m_pair->not_after)}});
    return true;
}

int CertificateStore::on_handshake(SSL* ssl, void* arg)
{
    auto* store = static_cast<CertificateStore*>(arg);
    store->refresh();
    std::shared_ptr<const KeyPair> pair;
    {
        std::lock_guard lock{store->m_mutex};
        pair = store->m_pair;
    }
    // The SSL object takes its own references: the pair may be replaced now.
    return SSL_use_cert_and_key(ssl, pair->cert.get(), pair->key.get(), pair->chain.get(), 1) == 1 ? 1 : 0;
}

void CertificateStore::attach(SSL_CTX& ctx)
{
    SSL_CTX_set_cert_cb(&ctx, &CertificateStore::on_handshake, this);
}

}  // namespace cw
