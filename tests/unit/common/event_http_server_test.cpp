// The event server as a whole over real loopback sockets: binding, parked requests and wake(), timeouts.
#include <doctest/doctest.h>

#include "event_server_rig.hpp"

using namespace cw::test;
using namespace std::chrono_literals;

TEST_SUITE("common::EventHttpServer")
{
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

    TEST_CASE("a second server on a port already served fails to bind instead of sharing it")
    {
        Running running{echo_path()};
        cw::EventHttpServerOptions options;
        options.port = static_cast<std::uint16_t>(running.port());
        cw::EventHttpServer second{options, echo_path()};
        CHECK_THROWS_AS(second.bind(), std::runtime_error);
        Client client{running.port()};
        client.send("GET /first HTTP/1.1\r\n\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/first") != std::string::npos);
    }

    TEST_CASE("a request head has the head timeout from its own first byte, after any wait in keep-alive")
    {
        // The loop sweeps once a second; the head below is left unfinished
        // across at least one sweep, which closed it when its time counted
        // from the request before.
        cw::EventHttpServerOptions options;
        options.head_timeout = 2s;
        options.idle_timeout = 60s;
        Running running{echo_path(), options};
        Client client{running.port()};
        client.send("GET /first HTTP/1.1\r\n\r\n");
        REQUIRE(client.receive(1).find("/first") != std::string::npos);
        std::this_thread::sleep_for(2500ms);  // idle in keep-alive, longer than a head may take
        client.send("GET /second HTTP/1.1\r\n");
        std::this_thread::sleep_for(1100ms);  // a sweep passes while the head is unfinished
        client.send("\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/second") != std::string::npos);
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
