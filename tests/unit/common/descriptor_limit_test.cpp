// Connection caps kept under the descriptors really available.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>

#include "common/descriptor_limit.hpp"

TEST_SUITE("common::descriptor_limit")
{
    TEST_CASE("caps that fit are kept")
    {
        const auto caps = cw::fit_connection_caps({1024, 64, 256}, 1'048'576, 32);
        CHECK(caps.main == 1024);
        CHECK(caps.probes == 64);
        CHECK(caps.imds == 256);
        CHECK_FALSE(caps.lowered);
    }

    TEST_CASE("the default caps under a 1024-descriptor limit are lowered to fit, probes keeping a share")
    {
        const auto caps = cw::fit_connection_caps({1024, 64, 0}, 1024, 32);
        CHECK(caps.lowered);
        CHECK(caps.probes == 64);
        CHECK(caps.main == 1024 - 32 - 64);
    }

    TEST_CASE("the IMDS listener's connections count: under 400 descriptors every cap together leaves the reserve")
    {
        const auto caps = cw::fit_connection_caps({1024, 64, 256}, 400, 56);
        CHECK(caps.lowered);
        CHECK(caps.main + caps.probes + caps.imds <= 400 - 56);
        CHECK(caps.imds == 43);  // an eighth of 344
        CHECK(caps.probes == 43);
        CHECK(caps.main == 344 - 86);
    }

    TEST_CASE("a tiny limit still leaves one connection to each listener")
    {
        const auto caps = cw::fit_connection_caps({1024, 64, 256}, 40, 32);
        CHECK(caps.main + caps.probes + caps.imds <= 8);
        CHECK(caps.main >= 1);
        CHECK(caps.probes >= 1);
        CHECK(caps.imds >= 1);
        const auto none = cw::fit_connection_caps({1024, 0, 0}, 10, 32);
        CHECK(none.main >= 1);
        CHECK(none.probes == 0);
        CHECK(none.imds == 0);
    }

    TEST_CASE("the soft limit is raised to the hard one")
    {
        rlimit saved{};
        REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
        rlimit lowered = saved;
        lowered.rlim_cur = std::min<rlim_t>(saved.rlim_max, 256);
        REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);
        const auto limit = cw::raise_descriptor_limit();
        rlimit now{};
        getrlimit(RLIMIT_NOFILE, &now);
        CHECK(now.rlim_cur == saved.rlim_max);
        CHECK((limit == now.rlim_cur || (now.rlim_cur == RLIM_INFINITY && limit == UINT64_MAX)));
        setrlimit(RLIMIT_NOFILE, &saved);
    }
}
