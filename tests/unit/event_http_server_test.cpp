// The event-loop server over real loopback sockets.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/event_http_server.hpp"

using namespace std::chrono_literals;

namespace {

// A server on an ephemeral port whose handler a test sets.
class Running {
public:
    explicit Running(cw::HttpHandler handler, cw::EventHttpServerOptions options = {})
        : m_server(options, std::move(handler))
    {
        m_port = m_server.bind();
        m_thread = std::thread{[this] { m_server.run(); }};
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

private:
    cw::EventHttpServer m_server;
    int m_port = 0;
    std::thread m_thread;
};

// A blocking client socket with a receive timeout, so a stall fails the test.
class Client {
public:
    explicit Client(int port) : m_fd(::socket(AF_INET, SOCK_STREAM, 0))
    {
        timeval timeout{5, 0};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }
    ~Client() { ::close(m_fd); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(const std::string& data) { REQUIRE(::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size())); }

    // Reads until `count` complete responses (by Content-Length) or EOF.
    std::string receive(int count)
    {
        std::string data;
        char buffer[4096];
        while (complete_responses(data) < count) {
            const ssize_t got = ::recv(m_fd, buffer, sizeof buffer, 0);
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

private:
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
            const auto length = std::stoul(data.substr(length_at + 16));
            if (data.size() < end + 4 + length) {
                return count;
            }
            position = end + 4 + length;
            ++count;
        }
    }

    int m_fd;
};

cw::HttpHandler echo_path()
{
    return [](const cw::HttpRequestHead& request, bool) {
        return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", request.path, {}}};
    };
}

}  // namespace

TEST_SUITE("common::EventHttpServer")
{
    TEST_CASE("answers pipelined requests in order on one connection")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        const std::string answers = client.receive(3);
        const auto a = answers.find("\r\n\r\n/a");
        const auto b = answers.find("\r\n\r\n/b");
        const auto c = answers.find("\r\n\r\n/c");
        REQUIRE(a != std::string::npos);
        REQUIRE(b != std::string::npos);
        REQUIRE(c != std::string::npos);
        CHECK(a < b);
        CHECK(b < c);
    }

    TEST_CASE("Connection: close is honoured after the answer")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.find("Connection: close\r\n") != std::string::npos);
        CHECK(client.closed_by_server());
    }

    TEST_CASE("a request split across packets is answered once complete")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /split HT");
        client.send("TP/1.1\r\nHost: x\r\n");
        client.send("\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/split") != std::string::npos);
    }

    TEST_CASE("an oversized head gets 431 and the connection closes")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET / HTTP/1.1\r\nAuthorization: " + std::string(64 * 1024, 'x') + "\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.rfind("HTTP/1.1 431 ", 0) == 0);
        CHECK(client.closed_by_server());
    }

    TEST_CASE("a parked request is answered on wake(), without blocking others")
    {
        std::atomic<bool> ready{false};
        Running running{[&](const cw::HttpRequestHead& request, bool) -> std::optional<cw::HttpResponse> {
                            if (request.path == "/wait" && !ready) {
                                return std::nullopt;
                            }
                            return cw::HttpResponse{200, "text/plain", request.path, {}};
                        },
                        [] {
                            cw::EventHttpServerOptions options;
                            options.threads = 1;  // the parked request and the other share the loop
                            options.park_limit = 60s;
                            return options;
                        }()};
        Client waiting{running.port()};
        waiting.send("GET /wait HTTP/1.1\r\n\r\n");
        Client other{running.port()};
        other.send("GET /now HTTP/1.1\r\n\r\n");
        CHECK(other.receive(1).find("/now") != std::string::npos);
        ready = true;
        running.server().wake();
        CHECK(waiting.receive(1).find("\r\n\r\n/wait") != std::string::npos);
    }

    TEST_CASE("a parked request past its limit gets the handler's final answer")
    {
        Running running{[](const cw::HttpRequestHead&, bool final) -> std::optional<cw::HttpResponse> {
                            if (!final) {
                                return std::nullopt;
                            }
                            return cw::HttpResponse{503, "application/json", R"({"Code":"Late"})", {}};
                        },
                        [] {
                            cw::EventHttpServerOptions options;
                            options.park_limit = 50ms;
                            return options;
                        }()};
        Client client{running.port()};
        client.send("GET / HTTP/1.1\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
        CHECK(answer.find(R"({"Code":"Late"})") != std::string::npos);
    }

    TEST_CASE("connections over the cap are refused, the others still served")
    {
        cw::EventHttpServerOptions options;
        options.max_connections = 2;
        options.threads = 1;
        Running running{echo_path(), options};
        Client first{running.port()};
        Client second{running.port()};
        first.send("GET /1 HTTP/1.1\r\n\r\n");
        second.send("GET /2 HTTP/1.1\r\n\r\n");
        CHECK(first.receive(1).find("/1") != std::string::npos);
        CHECK(second.receive(1).find("/2") != std::string::npos);
        Client third{running.port()};
        CHECK(third.closed_by_server());
        first.send("GET /again HTTP/1.1\r\n\r\n");
        CHECK(first.receive(1).find("/again") != std::string::npos);
    }

    TEST_CASE("HEAD gets the headers without the body")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("HEAD /body HTTP/1.1\r\nConnection: close\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.find("Content-Length: 5\r\n") != std::string::npos);
        CHECK(answer.find("/body") == std::string::npos);
    }

    TEST_CASE("a connection that never asks anything is closed after the head timeout, not the idle one")
    {
        cw::EventHttpServerOptions options;
        options.head_timeout = 100ms;
        options.idle_timeout = 60s;
        Running running{echo_path(), options};
        Client silent{running.port()};
        CHECK(silent.closed_by_server());  // within the 5 s receive timeout, not 60 s

        Client talking{running.port()};
        talking.send("GET /kept HTTP/1.1\r\n\r\n");
        CHECK(talking.receive(1).find("/kept") != std::string::npos);
    }
}
