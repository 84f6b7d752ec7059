#include <doctest/doctest.h>

#include "sidecar/exchange/backoff.hpp"

using namespace std::chrono_literals;

TEST_SUITE("sidecar::backoff")
{
    const cw::RefreshSettings settings;  // 1s initial, 30s cap

    TEST_CASE("retryable failures back off exponentially up to the cap")
    {
        const auto delay = [&](int failures, double random) {
            return cw::backoff_delay(failures, cw::ExchangeOutcome::retryable, std::nullopt, settings, random);
        };
        CHECK(delay(1, 0.0) == 500ms);
        CHECK(delay(1, 1.0) == 1s);
        CHECK(delay(2, 1.0) == 2s);
        CHECK(delay(3, 1.0) == 4s);
        CHECK(delay(6, 1.0) == 30s);
        CHECK(delay(100, 1.0) == 30s);
        CHECK(delay(100, 0.0) == 15s);
    }

    TEST_CASE("a rejected token waits the cap at once instead of hammering")
    {
        CHECK(cw::backoff_delay(1, cw::ExchangeOutcome::rejected, std::nullopt, settings, 0.0) >= 15s);
    }

    TEST_CASE("Retry-After is a lower bound")
    {
        CHECK(cw::backoff_delay(1, cw::ExchangeOutcome::retryable, cw::Millis{3s}, settings, 0.0) >= 3s);
        CHECK(cw::backoff_delay(6, cw::ExchangeOutcome::retryable, cw::Millis{3s}, settings, 1.0) >= 30s);
    }

    TEST_CASE("callers refused with the same Retry-After come back spread out, not in the same second")
    {
        // The usual backoff counts from the instant Retry-After names.
        const auto delay = [&](int failures, double random) {
            return cw::backoff_delay(failures, cw::ExchangeOutcome::retryable, cw::Millis{5s}, settings, random);
        };
        CHECK(delay(1, 0.0) == 5500ms);
        CHECK(delay(1, 1.0) == 6s);
        CHECK(delay(4, 0.0) == 9s);
        CHECK(delay(4, 1.0) == 13s);
    }
}
