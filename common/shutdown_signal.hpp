// SIGTERM and SIGINT as an ordinary event.
//
// The signals are blocked in every thread (block() runs in main before any
// thread starts, and threads inherit the mask); main then waits for one with
// sigwait. No work ever runs inside a signal handler.
#pragma once

#include <chrono>

namespace cw {

class ShutdownSignal {
public:
    // Blocks SIGTERM and SIGINT for this thread and the threads it starts.
    static void block();

    // Waits for SIGTERM or SIGINT; returns its number.
    static int wait();

    // The same, for at most `limit`; 0 when none came.
    static int wait_for(std::chrono::milliseconds limit);
};

}  // namespace cw
