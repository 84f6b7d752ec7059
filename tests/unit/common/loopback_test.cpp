// Which hosts count as this machine: the pod's token and instance metadata go to no other.
#include <doctest/doctest.h>

#include "common/loopback.hpp"

TEST_SUITE("common::loopback")
{
    TEST_CASE("localhost, ::1 and all of 127.0.0.0/8 are loopback")
    {
        for (const char* host : {"localhost", "::1", "127.0.0.1", "127.0.0.2", "127.255.255.254"}) {
            CAPTURE(host);
            CHECK(cw::is_loopback_host(host));
        }
    }

    TEST_CASE("a name that only starts like a loopback address is not one")
    {
        // Public DNS names of this shape resolve anywhere the owner likes.
        for (const char* host : {"127.0.0.1.nip.io", "127.evil.example", "localhost.example", "128.0.0.1", "10.0.0.1",
                                 "0.0.0.0", "::", "", "::ffff:10.0.0.1"}) {
            CAPTURE(host);
            CHECK_FALSE(cw::is_loopback_host(host));
        }
    }
}
