#include "common/shutdown_signal.hpp"

#include <pthread.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>

namespace cw {

namespace {

sigset_t shutdown_set()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

}  // namespace

void ShutdownSignal::block()
{
    const sigset_t set = shutdown_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // A client closing its connection mid-answer must not kill the sidecar.
    std::signal(SIGPIPE, SIG_IGN);
}

int ShutdownSignal::wait()
{
    const sigset_t set = shutdown_set();
    int signal_number = 0;
    while (sigwait(&set, &signal_number) != 0) {
    }
    return signal_number;
}

int ShutdownSignal::wait_for(std::chrono::milliseconds limit)
{
    const sigset_t set = shutdown_set();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::max(std::chrono::nanoseconds{0}, deadline - std::chrono::steady_clock::now());
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
        const timespec timeout{static_cast<time_t>(seconds.count()), static_cast<long>((left - seconds).count())};
        const int signal_number = sigtimedwait(&set, nullptr, &timeout);
        if (signal_number > 0) {
            return signal_number;
        }
        if (errno == EAGAIN) {
            return 0;
        }
        // EINTR: another signal; wait for what is left.
    }
}

}  // namespace cw
