// The rig the event server's tests share: a server on an ephemeral loopback
// port, a blocking client, a condition awaited with a bound, and ways to run
// the process out of descriptors or hold a loop inside a handler.
//
// Which loop accepts a newcomer: the loops register on the listening socket
// in order, and EPOLLEXCLUSIVE wakes the first registered one that sleeps in
// epoll_wait, and no other (a loop that is busy only finds the socket
// readable when it comes back). The first registered loop is the one the
// thread calling run() runs. So a newcomer that arrives while that loop
// waits is its, and one that arrives while it is held in a handler goes to
// another loop.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/event_http_server.hpp"

namespace cw::test {

using namespace std::chrono_literals;

// A server on an ephemeral port whose handler a test sets.
class Running {
public:
    explicit Running(cw::HttpHandler handler, cw::EventHttpServerOptions options = {})
        : m_server(options, std::move(handler))
    {
        m_port = m_server.bind();
        m_thread = std::thread{[this] {
            m_first_loop_thread = ::gettid();
            m_server.run();
        }};
    }
    ~Running()
    {
        m_server.stop();
        m_thread.join();
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

    [[nodiscard]] int port() const { return m_port; }
    cw::EventHttpServer& server() { return m_server; }

    // True while the first loop sleeps in epoll_wait: a newcomer now is its
    // (see the top of this file).
    [[nodiscard]] bool first_loop_waiting() const
    {
        const pid_t thread = m_first_loop_thread.load();
        if (thread == 0) {
            return false;
        }
        const std::string task = "/proc/self/task/" + std::to_string(thread);
        std::string waits_in;
        std::ifstream{task + "/wchan"} >> waits_in;
        if (waits_in.empty() || waits_in == "0") {
            // A kernel that does not name where a task sleeps: asleep is
            // the next best sign, a loop sleeping nowhere else for long.
            std::string stat;
            std::getline(std::ifstream{task + "/stat"}, stat);
            const auto state = stat.rfind(") ");
            return state != std::string::npos && stat.compare(state + 2, 1, "S") == 0;
        }
        return waits_in.find("epoll") != std::string::npos || waits_in.find("ep_poll") != std::string::npos;
    }

private:
    cw::EventHttpServer m_server;
    int m_port = 0;
    std::atomic<pid_t> m_first_loop_thread{0};
    std::thread m_thread;
};

// A blocking client socket with a receive timeout, so a stall fails the test.
class Client {
public:
    enum class Connect { now, later };
    explicit Client(int port, Connect when = Connect::now, int receive_buffer = 0)
        : m_fd(::socket(AF_INET, SOCK_STREAM, 0)), m_port(port)
    {
        timeval timeout{5, 0};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        if (receive_buffer > 0) {
            setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        if (when == Connect::now) {
            connect();
        }
    }

    // Needs no new descriptor: the socket exists already.
    void connect()
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(m_port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }
    ~Client() { ::close(m_fd); }
    // How long one recv waits before receive() gives up (5 s unless set):
    // a guard against a hung server, not a measure of speed.
    void set_receive_timeout(std::chrono::seconds patience)
    {
        timeval timeout{static_cast<time_t>(patience.count()), 0};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    }
    [[nodiscard]] int fd() const { return m_fd; }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(const std::string& data)
    {
        REQUIRE(::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
    }

    // Reads until `count` complete responses (by Content-Length) or EOF.
    std::string receive(int count)
    {
        std::string data;
        char buffer[4096];
        while (complete_responses(data) < count) {
            const ssize_t got = ::recv(m_fd, buffer, sizeof buffer, 0);
            if (got < 0 && errno == EINTR) {
                continue;  // with SO_RCVTIMEO set, a signal interrupts recv even under SA_RESTART
            }
            if (got <= 0) {
                break;
            }
            data.append(buffer, static_cast<std::size_t>(got));
        }
        return data;
    }

    // True when the server has closed the connection.
    bool closed_by_server()
    {
        char byte = 0;
        return ::recv(m_fd, &byte, 1, 0) == 0;
    }

    // Responses complete in `data`, by their Content-Length.
    static int complete_responses(const std::string& data)
    {
        int count = 0;
        std::size_t position = 0;
        for (;;) {
            const auto end = data.find("\r\n\r\n", position);
            if (end == std::string::npos) {
                return count;
            }
            const auto length_at = data.find("Content-Length: ", position);
            const auto length = std::stoul(data.substr(length_at + 16, 20));
            if (data.size() < end + 4 + length) {
                return count;
            }
            position = end + 4 + length;
            ++count;
        }
    }

private:
    int m_fd;
    int m_port;
};

// Waits for a condition the server reaches on its own; false after 5 s.
template <typename Condition>
bool eventually(Condition condition)
{
    for (int i = 0; i < 1000; ++i) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

// Counts occurrences of `needle`.
inline std::size_t count_of(const std::string& text, std::string_view needle)
{
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) {
        ++count;
    }
    return count;
}

// Lowers this process's descriptor limit and takes every descriptor left
// under it, so the next accept4 fails with EMFILE; gives all back when done.
class DescriptorExhaustion {
public:
    DescriptorExhaustion()
    {
        getrlimit(RLIMIT_NOFILE, &m_saved);
        rlimit lowered = m_saved;
        lowered.rlim_cur = std::min<rlim_t>(m_saved.rlim_cur, 256);
        setrlimit(RLIMIT_NOFILE, &lowered);
        for (;;) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                break;
            }
            m_taken.push_back(fd);
        }
    }
    ~DescriptorExhaustion() { release(); }
    DescriptorExhaustion(const DescriptorExhaustion&) = delete;
    DescriptorExhaustion& operator=(const DescriptorExhaustion&) = delete;

    // Frees one descriptor for the server to accept into.
    void give_back_one()
    {
        REQUIRE(!m_taken.empty());
        ::close(m_taken.back());
        m_taken.pop_back();
    }

    void release()
    {
        for (const int fd : m_taken) {
            ::close(fd);
        }
        m_taken.clear();
        setrlimit(RLIMIT_NOFILE, &m_saved);
    }

private:
    rlimit m_saved{};
    std::vector<int> m_taken;
};

// One loop held inside a handler (GET /hold) while callers queue up behind
// it; the holder then has a second request parked (GET /owed), so it is
// owed an answer and never given up to make room. Accepts again, pausing 50 ms when out of descriptors, on release().
// With several loops, the one held is the first (see the top of this file):
// the others accept meanwhile.
class HeldLoop {
public:
    explicit HeldLoop(cw::EventHttpServerOptions options = default_options())
        : m_released(m_release.get_future().share()),
          m_running{[this](const cw::HttpRequestHead& request, bool) {
                        if (request.path == "/hold") {
                            m_holding = true;
                            m_released.wait();
                        }
                        if (request.path == "/owed") {
                            return std::optional<cw::HttpResponse>{};  // parked: owed an answer all along
                        }
                        return std::optional<cw::HttpResponse>{
                            cw::HttpResponse{200, "text/plain", request.path, {}}};
                    },
                    options},
          m_holder{m_running.port(), Client::Connect::later}
    {
        REQUIRE(eventually([this] { return m_running.first_loop_waiting(); }));
        m_holder.connect();
        m_holder.send("GET /hold HTTP/1.1\r\n\r\nGET /owed HTTP/1.1\r\n\r\n");
        REQUIRE(eventually([this] { return m_holding.load(); }));
    }

    ~HeldLoop() { release(); }  // a failed check must not leave the loop held at shutdown
    HeldLoop(const HeldLoop&) = delete;
    HeldLoop& operator=(const HeldLoop&) = delete;

    [[nodiscard]] int port() const { return m_running.port(); }
    cw::EventHttpServer& server() { return m_running.server(); }
    [[nodiscard]] bool first_loop_waiting() const { return m_running.first_loop_waiting(); }
    void release()
    {
        if (!m_was_released.exchange(true)) {
            m_release.set_value();
        }
    }
    bool holder_answered() { return m_holder.receive(1).find("\r\n\r\n/hold") != std::string::npos; }

    static cw::EventHttpServerOptions default_options()
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.accept_pause = 50ms;
        options.park_limit = 10min;  // the holder's second request stays owed for the whole test
        return options;
    }

private:
    std::atomic<bool> m_holding{false};
    std::atomic<bool> m_was_released{false};
    std::promise<void> m_release;
    std::shared_future<void> m_released;
    Running m_running;
    Client m_holder;
};

inline cw::HttpHandler echo_path()
{
    return [](const cw::HttpRequestHead& request, bool) {
        return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", request.path, {}}};
    };
}

}  // namespace cw::test
