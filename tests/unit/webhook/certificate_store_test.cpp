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

#include "self_signed.hpp"
#include "temp_dir.hpp"
#include "webhook/certificate_store.hpp"

namespace {

using namespace cw::test;

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
