#include <doctest/doctest.h>

#include "fake_clock.hpp"
#include "sidecar/refresh_policy.hpp"

using namespace std::chrono_literals;

namespace {

cw::Credentials lasting(cw::Millis lifetime, cw::SystemTime obtained)
{
    return {"A", "S", "", obtained + lifetime, obtained};
}

// Share of the lifetime still left at `instant`.
double left_at(const cw::Credentials& credentials, cw::SystemTime instant)
{
    return static_cast<double>((credentials.expiration - instant).count()) /
           static_cast<double>((credentials.expiration - credentials.obtained_at).count());
}

}  // namespace

TEST_SUITE("sidecar::refresh_policy")
{
    TEST_CASE("renewal leaves at least 70% of the lifetime on served keys, for every lifetime and jitter")
    {
        const cw::RefreshSettings settings;
        cw::test::FakeClock clock;
        for (const cw::Millis lifetime : {cw::Millis{15min}, cw::Millis{1h}, cw::Millis{12h}}) {
            const auto credentials = lasting(lifetime, clock.now());
            for (const double random : {0.0, 0.5, 0.999}) {
                CAPTURE(lifetime.count());
                CAPTURE(random);
                const auto due = cw::refresh_due(credentials, settings, random);
                CHECK(due > credentials.obtained_at);
                // Served until the refresh lands: the worst case is the instant before it.
                CHECK(left_at(credentials, due) >= 0.70);
                CHECK(left_at(credentials, due) <= 0.78);
            }
        }
    }

    TEST_CASE("15-minute keys are renewed before botocore's 15-minute advisory window matters")
    {
        cw::test::FakeClock clock;
        const auto credentials = lasting(15min, clock.now());
        const auto due = cw::refresh_due(credentials, cw::RefreshSettings{}, 0.0);
        // Over 10.5 minutes left: never inside botocore's 10-minute blocking window.
        CHECK(credentials.expiration - due > 10min + 30s);
    }

    TEST_CASE("jitter only ever moves renewal earlier, spreading a fleet over a window")
    {
        cw::test::FakeClock clock;
        const auto credentials = lasting(1h, clock.now());
        const cw::RefreshSettings settings;
        const auto latest = cw::refresh_due(credentials, settings, 0.0);
        const auto earliest = cw::refresh_due(credentials, settings, 1.0);
        CHECK(latest == credentials.obtained_at + 15min);
        CHECK(earliest == credentials.obtained_at + 13min + 30s);
        const auto middle = cw::refresh_due(credentials, settings, 0.5);
        CHECK(middle < latest);
        CHECK(middle > earliest);
    }

    TEST_CASE("keys stop being served a margin before expiry, at most a tenth of their lifetime")
    {
        cw::test::FakeClock clock;
        const cw::RefreshSettings settings;  // 1 minute margin
        const auto long_lived = lasting(15min, clock.now());
        CHECK(cw::serve_until(long_lived, settings) == long_lived.expiration - 1min);
        const auto short_lived = lasting(20s, clock.now());
        CHECK(cw::serve_until(short_lived, settings) == short_lived.expiration - 2s);

        CHECK(cw::servable(long_lived, settings, clock.now()));
        clock.advance(14min - 1ms);
        CHECK(cw::servable(long_lived, settings, clock.now()));
        clock.advance(1ms);
        CHECK_FALSE(cw::servable(long_lived, settings, clock.now()));
    }
}
