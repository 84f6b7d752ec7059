// When the startup probe lets the app start (/startupz).
//
// In Kubernetes the injected native sidecar's startup probe holds the app
// containers back until it passes. Were it to pass only with credentials, a
// token CoreWeave refuses for good (a wrong org, a policy) would keep the pod
// in Init forever: the kubelet restarts the sidecar again and again, a Job
// holds its GPUs, and backoffLimit never counts a failure. So the gate opens
// without credentials once --startup-gate has passed since start: the app
// starts, its credential requests fail with the sidecar's reason, and a Job
// fails where people look. /readyz keeps its meaning (credentials held).
#pragma once

#include <atomic>

#include "common/clock.hpp"

namespace cw {

enum class StartupState { ready, gate_open, waiting };

class StartupGate {
public:
    // `open_after` zero: the gate never opens without credentials.
    StartupGate(Millis open_after, SteadyTime started);

    // What the startup probe is told at `now`, given whether credentials can be served.
    [[nodiscard]] StartupState state(bool servable, SteadyTime now) const;

    // True for the first caller only, so that the gate opening is logged once
    // however many listeners and probes find it open.
    [[nodiscard]] bool first_to_find_open();

    [[nodiscard]] Millis open_after() const { return m_open_after; }

private:
    const Millis m_open_after;
    const SteadyTime m_started;
    std::atomic<bool> m_found_open{false};
};

}  // namespace cw
