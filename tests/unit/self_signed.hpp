// Test keys and self-signed certificates made in memory with OpenSSL, for
// the tests that serve TLS.
#pragma once

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <utility>

namespace cw::test {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

inline Key new_key()
{
    return Key{EVP_EC_gen("P-256"), EVP_PKEY_free};
}

inline std::string key_pem(EVP_PKEY& key)
{
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed certificate for `key` whose notAfter is `days` from now;
// returns the PEM and that instant in seconds since the epoch.
inline std::pair<std::string, std::int64_t> certificate_pem(EVP_PKEY& key, long days)
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

}  // namespace cw::test
