// File descriptors: take what the hard limit allows, and keep connection
// caps under what is really available.
//
// Containers often start with a soft RLIMIT_NOFILE of 1024 under a much
// higher hard limit; raising the soft limit is free and unprivileged. Caps
// above what remains once the process's own descriptors are counted would
// not be caps at all: accept4 would fail with EMFILE first, and so would
// libcurl's sockets and the token file's reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cw {

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit
// now in force.
std::uint64_t raise_descriptor_limit();

struct ConnectionCaps {
    std::size_t main = 0;
    std::size_t probes = 0;  // 0: no probe listener
    std::size_t imds = 0;    // 0: no listener of its own for instance metadata
    bool lowered = false;    // the wanted caps did not fit
};

// Caps for every listener, `wanted` (`lowered` ignored), that fit in `limit`
// descriptors once `reserved` are kept for everything else. When they do
// not fit, the probe and IMDS listeners each keep an eighth (at least one),
// the main one the rest.
ConnectionCaps fit_connection_caps(const ConnectionCaps& wanted, std::uint64_t limit, std::size_t reserved);

}  // namespace cw
