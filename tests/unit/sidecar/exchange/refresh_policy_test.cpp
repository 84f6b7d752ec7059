#include <doctest/doctest.h>

#include "fake_clock.hpp"
#include "sidecar/exchange/refresh_policy.hpp"

using namespace std::chrono_literals;

namespace {

// Keys of `lifetime` that sent at the clock's now, from an upstream whose
// clock reads `upstream_ahead` more than ours.
cw::Credentials lasting(cw::Millis lifetime, const cw::test::FakeClock& clock, cw::Millis upstream_ahead = 0ms)
{
    const cw::SystemTime upstream_now = clock.now() + upstream_ahead;
    return {"A", "S", "", upstream_now + lifetime, clock.now(), upstream_now, clock.steady_now()};
}

// Share of the lifetime still left at `instant`.
double left_at(const cw::Credentials& credentials, cw::SteadyTime instant)
{
    return static_cast<double>((credentials.end() - instant).count()) /
           static_cast<double>(std::chrono::duration_cast<cw::SteadyTime::duration>(credentials.lifetime()).count());
}

}  // namespace

TEST_SUITE("sidecar::refresh_policy")
{
    TEST_CASE("renewal leaves at least 70% of the lifetime on served keys, for every lifetime and jitter")
    {
        const cw::RefreshSettings settings;
        cw::test::FakeClock clock;
        for (const cw::Millis lifetime : {cw::Millis{15min}, cw::Millis{1h}, cw::Millis{12h}}) {
            const auto credentials = lasting(lifetime, clock);
            for (const double random : {0.0, 0.5, 0.999}) {
                CAPTURE(lifetime.count());
                CAPTURE(random);
                const auto due = cw::refresh_due(credentials, settings, random);
                CHECK(due > credentials.sent);
                // Served until the refresh lands: the worst case is the instant before it.
                CHECK(left_at(credentials, due) >= 0.70);
                CHECK(left_at(credentials, due) <= 0.78);
            }
        }
    }

    TEST_CASE("15-minute keys are renewed before botocore's 15-minute advisory window matters")
    {
        cw::test::FakeClock clock;
        const auto credentials = lasting(15min, clock);
        const auto due = cw::refresh_due(credentials, cw::RefreshSettings{}, 0.0);
        // Over 10.5 minutes left: never inside botocore's 10-minute blocking window.
        CHECK(credentials.end() - due > 10min + 30s);
    }

    TEST_CASE("jitter only ever moves renewal earlier, spreading a fleet over a window")
    {
        cw::test::FakeClock clock;
        const auto credentials = lasting(1h, clock);
        const cw::RefreshSettings settings;
        const auto latest = cw::refresh_due(credentials, settings, 0.0);
        const auto earliest = cw::refresh_due(credentials, settings, 1.0);
        CHECK(latest == credentials.sent + 15min);
        CHECK(earliest == credentials.sent + 13min + 30s);
        const auto middle = cw::refresh_due(credentials, settings, 0.5);
        CHECK(middle < latest);
        CHECK(middle > earliest);
    }

    TEST_CASE("the configured fraction sets the renewal point")
    {
        cw::test::FakeClock clock;
        const auto credentials = lasting(1h, clock);
        cw::RefreshSettings settings;
        settings.refresh_fraction = 0.5;
        CHECK(cw::refresh_due(credentials, settings, 0.0) == credentials.sent + 30min);
    }

    TEST_CASE("however late the fraction, renewal comes a margin before serving ends")
    {
        cw::test::FakeClock clock;
        cw::RefreshSettings settings;
        settings.refresh_fraction = 0.9;  // the highest --refresh-fraction takes
        for (const cw::Millis lifetime : {cw::Millis{20s}, cw::Millis{15min}}) {
            CAPTURE(lifetime.count());
            const auto credentials = lasting(lifetime, clock);
            const auto due = cw::refresh_due(credentials, settings, 0.0);
            CHECK(due <= cw::serve_until(credentials, settings) - cw::expiry_margin(credentials, settings));
            CHECK(due > credentials.sent);
        }
    }

    TEST_CASE("keys stop being served a margin before their end, at most a tenth of their lifetime")
    {
        cw::test::FakeClock clock;
        const cw::RefreshSettings settings;  // 1 minute margin
        const auto long_lived = lasting(15min, clock);
        CHECK(cw::serve_until(long_lived, settings) == long_lived.end() - 1min);
        const auto short_lived = lasting(20s, clock);
        CHECK(cw::serve_until(short_lived, settings) == short_lived.end() - 2s);

        CHECK(cw::servable(long_lived, settings, clock.steady_now()));
        clock.advance(14min - 1s - 1ms);  // 15 min, less a second for Date's resolution, less the margin
        CHECK(cw::servable(long_lived, settings, clock.steady_now()));
        clock.advance(1ms);
        CHECK_FALSE(cw::servable(long_lived, settings, clock.steady_now()));
    }

    TEST_CASE("a node clock off by hours either way moves neither renewal nor the end of serving")
    {
        const cw::RefreshSettings settings;
        for (const cw::Millis upstream_ahead :
             {cw::Millis{-3h}, cw::Millis{-10min}, cw::Millis{10min}, cw::Millis{3h}}) {
            CAPTURE(upstream_ahead.count());
            cw::test::FakeClock clock;
            const auto skewed = lasting(120s, clock, upstream_ahead);
            const auto agreed = lasting(120s, clock);
            CHECK(cw::refresh_due(skewed, settings, 0.0) == cw::refresh_due(agreed, settings, 0.0));
            CHECK(cw::serve_until(skewed, settings) == cw::serve_until(agreed, settings));
            CHECK(cw::refresh_due(skewed, settings, 0.0) == skewed.sent + 30s);
            // The end is 119 s after sending (a second off for Date's resolution), less a 12 s margin.
            CHECK(cw::serve_until(skewed, settings) == skewed.sent + 107s);
        }
    }
}
