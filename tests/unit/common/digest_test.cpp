#include <doctest/doctest.h>

#include "common/digest.hpp"

TEST_SUITE("common::digest")
{
    TEST_CASE("SHA-256 matches the known answer")
    {
        const cw::Sha256 digest = cw::sha256("abc");
        CHECK(digest[0] == 0xba);
        CHECK(digest[1] == 0x78);
        CHECK(digest[31] == 0xad);
    }

    TEST_CASE("equal and different digests compare as such")
    {
        CHECK(cw::constant_time_equal(cw::sha256("same"), cw::sha256("same")));
        CHECK_FALSE(cw::constant_time_equal(cw::sha256("same"), cw::sha256("other")));
    }

    TEST_CASE("digests that differ only in their last byte are different")
    {
        const cw::Sha256 digest = cw::sha256("token");
        cw::Sha256 almost = digest;
        almost.back() ^= 0x01;
        CHECK_FALSE(cw::constant_time_equal(digest, almost));
        almost = digest;
        almost[16] ^= 0x80;
        CHECK_FALSE(cw::constant_time_equal(digest, almost));
    }
}
