// One connection of the event server over real loopback sockets: requests, pipelining, buffers, answers.
#include <doctest/doctest.h>

#include "event_server_rig.hpp"

using namespace cw::test;
using namespace std::chrono_literals;

TEST_SUITE("common::EventHttpServer")
{    TEST_CASE("answers pipelined requests in order on one connection")
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

    TEST_CASE("2,000 requests pipelined in one write are all answered, in order")
    {
        // Answers of about 300 bytes: 2,000 of them are more than the
        // server queues for one client before it waits for the client to read.
        Running running{[](const cw::HttpRequestHead& request, bool) {
            return std::optional<cw::HttpResponse>{
                cw::HttpResponse{200, "text/plain", std::string(200, '.') + request.path, {}}};
        }};
        Client client{running.port()};
        std::string requests;
        for (int i = 0; i < 2000; ++i) {
            requests += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: example\r\n\r\n";
        }
        client.send(requests);
        const std::string answers = client.receive(2000);
        CHECK(count_of(answers, "HTTP/1.1 200 OK\r\n") == 2000);
        CHECK(answers.find("./1999") != std::string::npos);
        CHECK(answers.find("./1999") > answers.find("./1998"));
    }

    TEST_CASE("a client pipelining hundreds of requests does not keep its loop from another client")
    {
        std::atomic<int> hog_answers{0};
        std::atomic<int> hog_answers_when_other_served{-1};
        std::atomic<bool> other_sent{false};
        cw::EventHttpServerOptions options;
        options.threads = 1;  // both clients on the same loop
        Running running{[&](const cw::HttpRequestHead& request, bool) {
                            if (request.path == "/other") {
                                hog_answers_when_other_served = hog_answers.load();
                            } else {
                                // The first hog request waits until the other request is in the kernel.
                                while (!other_sent.load()) {
                                    std::this_thread::yield();
                                }
                                ++hog_answers;
                            }
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", "x", {}}};
                        },
                        options};
        Client hog{running.port()};
        std::string requests;
        for (int i = 0; i < 2000; ++i) {
            requests += "GET /h HTTP/1.1\r\n\r\n";
        }
        hog.send(requests);
        Client other{running.port()};
        other.send("GET /other HTTP/1.1\r\n\r\n");
        other_sent = true;
        CHECK(other.receive(1).find("\r\n\r\nx") != std::string::npos);
        CAPTURE(hog_answers_when_other_served.load());
        // Turns of 16 answers, a few rounds at most; a loop serving the hog
        // alone answers all that one read brought in (16 KiB: over 800).
        CHECK(hog_answers_when_other_served.load() <= 200);
        CHECK(count_of(hog.receive(2000), "HTTP/1.1 200 OK\r\n") == 2000);
    }

    TEST_CASE("a client that pipelines and never reads holds a bounded buffer, released once it reads")
    {
        const std::string body(16 * 1024, 'x');
        std::atomic<int> answered{0};
        cw::EventHttpServerOptions options;
        options.threads = 1;
        Running running{[&](const cw::HttpRequestHead&, bool) {
                            ++answered;
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", body, {}}};
                        },
                        options};
        // 600 answers of 16 KiB are 9.6 MB: more than the kernel's socket
        // buffers between the two ends can take, so the server must hold or stop.
        constexpr int k_requests = 600;
        Client hog{running.port(), Client::Connect::now, 4096};
        std::string requests;
        for (int i = 0; i < k_requests; ++i) {
            requests += "GET /big HTTP/1.1\r\n\r\n";
        }
        hog.send(requests);
        // Wait until the server has stopped answering (the socket is full).
        int seen = -1;
        REQUIRE(eventually([&] {
            const int now = answered.load();
            const bool settled = now == seen && now > 0;
            seen = now;
            std::this_thread::sleep_for(20ms);
            return settled;
        }));
        CHECK(answered.load() < k_requests);  // parsing paused while output waits
        const auto held = running.server().stats().buffered_bytes;
        CAPTURE(held);
        // The output cap plus one answer, at most doubled by string growth.
        CHECK(held <= 2 * (options.max_pending_output + body.size() + 1024));

        const std::string answers = hog.receive(k_requests);
        CHECK(count_of(answers, "HTTP/1.1 200 OK\r\n") == k_requests);
        CHECK(eventually([&] { return running.server().stats().buffered_bytes <= 8 * 1024; }));
    }

    TEST_CASE("past the server-wide buffer limit, connections holding buffers are closed, readers unaffected")
    {
        const std::string body(16 * 1024, 'x');
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.max_buffered = 256 * 1024;
        Running running{[&](const cw::HttpRequestHead&, bool) {
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", body, {}}};
                        },
                        options};
        std::string requests;
        for (int i = 0; i < 600; ++i) {
            requests += "GET /big HTTP/1.1\r\n\r\n";
        }
        std::vector<std::unique_ptr<Client>> hogs;
        for (int i = 0; i < 8; ++i) {
            hogs.push_back(std::make_unique<Client>(running.port(), Client::Connect::now, 4096));
            hogs.back()->send(requests);
        }
        REQUIRE(eventually([&] { return running.server().stats().shed > 0; }));
        CHECK(running.server().stats().buffered_bytes <= options.max_buffered + 2 * (body.size() + 1024));
        Client reader{running.port()};
        reader.send("GET /small HTTP/1.1\r\n\r\n");
        CHECK(reader.receive(1).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    }

    TEST_CASE("a handler that throws gets its caller a 500 without the exception's text, and the server goes on")
    {
        Running running{[](const cw::HttpRequestHead& request, bool) -> std::optional<cw::HttpResponse> {
            if (request.path == "/boom") {
                throw std::runtime_error("secret-detail-42");
            }
            return cw::HttpResponse{200, "text/plain", request.path, {}};
        }};
        Client client{running.port()};
        client.send("GET /boom HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
        const std::string answers = client.receive(2);
        CHECK(answers.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
        CHECK(answers.find(R"("Code":"InternalError")") != std::string::npos);
        CHECK(answers.find("secret-detail-42") == std::string::npos);
        CHECK(answers.find("\r\n\r\n/after") != std::string::npos);
        CHECK(running.server().stats().handler_failures == 1);
    }

    TEST_CASE("without keep-alive, every answer says Connection: close and the connection closes")
    {
        cw::EventHttpServerOptions options;
        options.keep_alive = false;
        Running running{echo_path(), options};
        Client client{running.port()};
        client.send("GET /probe HTTP/1.1\r\n\r\n");
        CHECK(client.receive(1).find("Connection: close\r\n") != std::string::npos);
        CHECK(client.closed_by_server());
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

}
