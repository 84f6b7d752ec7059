// The webhook's certificate store against real PEM files, renewed the ways
// cert-manager and the kubelet renew them.
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "temp_dir.hpp"
#include "webhook/certificate_store.hpp"

namespace {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Key new_key()
{
    return Key{EVP_EC_gen("P-256"), EVP_PKEY_free};
}

std::string key_pem(EVP_PKEY& key)
{
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed certificate for `key` whose notAfter is `days` from now;
// returns the PEM and that instant in seconds since the epoch.
std::pair<std::string, std::int64_t> certificate_pem(EVP_PKEY& key, long days)
{
    const std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), X509_free};
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), days);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("cwcreds-webhook"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), &key);
    REQUIRE(X509_sign(cert.get(), &key, EVP_sha256()) > 0);
    std::tm tm{};
    REQUIRE(ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1);
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
    REQUIRE(PEM_write_bio_X509(bio.get(), cert.get()) == 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return {std::string(data, static_cast<std::size_t>(size)), static_cast<std::int64_t>(timegm(&tm))};
}

// Replaces a file the way a careful writer does (a new file renamed over
// the old), so each version has an inode of its own whatever the
// filesystem's timestamp granularity.
void replace(const cw::test::TempDir& dir, const std::string& name, const std::string& content)
{
    std::filesystem::rename(dir.write(name + ".new", content), dir.path() / name);
}

}  // namespace

TEST_SUITE("webhook::CertificateStore")
{
    TEST_CASE("a certificate renewed with the same key, only its file rewritten, is served and its expiry reported")
    {
        // cert-manager with rotationPolicy: Never keeps the private key: a
        // renewal changes tls.crt alone.
        cw::test::TempDir dir;
        const Key key = new_key();
        const auto [first_pem, first_not_after] = certificate_pem(*key, 30);
        const auto cert_file = dir.write("tls.crt", first_pem);
        const auto key_file = dir.write("tls.key", key_pem(*key));
        cw::CertificateStore store{cert_file, key_file};
        CHECK(store.not_after() == first_not_after);

        const auto [renewed_pem, renewed_not_after] = certificate_pem(*key, 90);
        REQUIRE(renewed_not_after > first_not_after);
        replace(dir, "tls.crt", renewed_pem);

        CHECK(store.refresh());
        CHECK(store.reloads() == 1);
        CHECK(store.not_after() == renewed_not_after);
    }

    TEST_CASE("a new key and certificate written one file at a time are taken once both match")
    {
        cw::test::TempDir dir;
        const Key old_key = new_key();
        const auto [old_pem, old_not_after] = certificate_pem(*old_key, 30);
        const auto cert_file = dir.write("tls.crt", old_pem);
        const auto key_file = dir.write("tls.key", key_pem(*old_key));
        cw::CertificateStore store{cert_file, key_file};

        // The key first: it does not match the certificate, so the old pair keeps serving.
        const Key new_key_pair = new_key();
        replace(dir, "tls.key", key_pem(*new_key_pair));
        CHECK_FALSE(store.refresh());
        CHECK(store.failed_reloads() == 1);
        CHECK(store.not_after() == old_not_after);

        // Then the certificate: the pair matches again and is taken.
        const auto [new_pem, new_not_after] = certificate_pem(*new_key_pair, 60);
        replace(dir, "tls.crt", new_pem);
        CHECK(store.refresh());
        CHECK(store.reloads() == 1);
        CHECK(store.not_after() == new_not_after);
    }

    TEST_CASE("files left as they are cost no reload")
    {
        cw::test::TempDir dir;
        const Key key = new_key();
        const auto cert_file = dir.write("tls.crt", certificate_pem(*key, 30).first);
        const auto key_file = dir.write("tls.key", key_pem(*key));
        cw::CertificateStore store{cert_file, key_file};
        CHECK(store.refresh());
        CHECK(store.refresh());
        CHECK(store.reloads() == 0);
        CHECK(store.failed_reloads() == 0);
    }
}
