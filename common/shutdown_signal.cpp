#include "common/shutdown_signal.hpp"

#include <csignal>
#include <pthread.h>

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

}  // namespace cw
