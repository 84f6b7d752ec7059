#include "sidecar/serve/startup_gate.hpp"

namespace cw {

StartupGate::StartupGate(Millis open_after, SteadyTime started) : m_open_after(open_after), m_started(started) {}

StartupState StartupGate::state(bool servable, SteadyTime now) const
{
    if (servable) {
        return StartupState::ready;
    }
    if (m_open_after > Millis{0} && now - m_started >= m_open_after) {
        return StartupState::gate_open;
    }
    return StartupState::waiting;
}

bool StartupGate::first_to_find_open()
{
    return !m_found_open.exchange(true);
}

}  // namespace cw
