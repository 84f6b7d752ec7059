#include <doctest/doctest.h>

#include "fake_clock.hpp"
#include "sidecar/serve/startup_gate.hpp"

using namespace std::chrono_literals;

TEST_SUITE("sidecar::StartupGate")
{
    TEST_CASE("credentials pass at once, and the gate opens without them only once its time has passed")
    {
        cw::test::FakeClock clock;
        const cw::StartupGate gate{2min, clock.steady_now()};
        CHECK(gate.state(true, clock.steady_now()) == cw::StartupState::ready);
        CHECK(gate.state(false, clock.steady_now()) == cw::StartupState::waiting);
        clock.advance(2min - 1ms);
        CHECK(gate.state(false, clock.steady_now()) == cw::StartupState::waiting);
        clock.advance(1ms);
        CHECK(gate.state(false, clock.steady_now()) == cw::StartupState::gate_open);
        CHECK(gate.state(true, clock.steady_now()) == cw::StartupState::ready);
    }

    TEST_CASE("a zero gate never opens without credentials")
    {
        cw::test::FakeClock clock;
        const cw::StartupGate gate{0ms, clock.steady_now()};
        clock.advance(24h);
        CHECK(gate.state(false, clock.steady_now()) == cw::StartupState::waiting);
        CHECK(gate.state(true, clock.steady_now()) == cw::StartupState::ready);
    }

    TEST_CASE("only the first to find the gate open is told so")
    {
        cw::StartupGate gate{1s, cw::SteadyTime{}};
        CHECK(gate.first_to_find_open());
        CHECK_FALSE(gate.first_to_find_open());
    }
}
