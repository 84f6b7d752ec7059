#include <doctest/doctest.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include "common/core_dumps.hpp"

TEST_SUITE("common::core_dumps")
{
    TEST_CASE("the process becomes non-dumpable with a zero core limit")
    {
        REQUIRE(cw::disable_core_dumps());
        CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
        rlimit limit{};
        REQUIRE(getrlimit(RLIMIT_CORE, &limit) == 0);
        CHECK(limit.rlim_cur == 0);
    }
}
