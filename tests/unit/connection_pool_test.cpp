#include <doctest/doctest.h>

#include <condition_variable>
#include <latch>

#include <httplib.h>

#include "sidecar/connection_pool.hpp"

using namespace std::chrono_literals;

TEST_SUITE("sidecar::connection_pool")
{
    // Each task stands for a keep-alive connection that holds its thread:
    // all of them must be running at the same time, none left queued.
    TEST_CASE("256 long-lived tasks all run at once")
    {
        const auto pool = cw::make_connection_pool(1024, 10s);
        std::latch all_running{256};
        std::latch release{1};
        for (int i = 0; i < 256; ++i) {
            pool->enqueue([&] {
                all_running.count_down();
                release.wait();
            });
        }
        all_running.wait();  // would hang with a fixed pool of 8
        release.count_down();
        pool->shutdown();
    }

    TEST_CASE("beyond the cap, tasks wait for a free thread instead of failing")
    {
        const auto pool = cw::make_connection_pool(2, 10s);
        std::atomic<int> done{0};
        std::latch finished{20};
        for (int i = 0; i < 20; ++i) {
            pool->enqueue([&] {
                ++done;
                finished.count_down();
            });
        }
        finished.wait();
        CHECK(done == 20);
        pool->shutdown();
    }

    TEST_CASE("idle threads leave and new work still runs")
    {
        const auto pool = cw::make_connection_pool(8, 1ms);
        for (int round = 0; round < 3; ++round) {
            std::latch ran{4};
            for (int i = 0; i < 4; ++i) {
                pool->enqueue([&] { ran.count_down(); });
            }
            ran.wait();
        }
        pool->shutdown();
    }
}
