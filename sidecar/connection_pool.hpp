// The threads that serve client connections.
//
// cpp-httplib hands each accepted connection to a task queue, and the task
// keeps its thread for the whole keep-alive life of the connection. Its
// default fixed pool (8 threads here) therefore stalls as soon as more
// keep-alive clients than threads are connected: measured, 176 of 256
// keep-alive clients timed out. This pool grows on demand up to a cap
// (--max-connections), so every connected client has a thread, and shrinks
// again when threads sit idle, so a burst does not pin memory forever.
#pragma once

#include <cstddef>
#include <memory>

#include "common/clock.hpp"

namespace httplib {
class TaskQueue;
}

namespace cw {

std::unique_ptr<httplib::TaskQueue> make_connection_pool(std::size_t max_threads, Millis idle_exit);

}  // namespace cw
