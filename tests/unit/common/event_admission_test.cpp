// The event server at its connection cap and out of descriptors, over real loopback sockets.
#include <doctest/doctest.h>

#include <atomic>

#include "event_server_rig.hpp"

using namespace cw::test;
using namespace std::chrono_literals;

TEST_SUITE("common::EventHttpServer")
{
    TEST_CASE("at the cap, with nothing idle, the connection waiting longest on a half-sent head makes room")
    {
        cw::EventHttpServerOptions options;
        options.max_connections = 2;
        options.threads = 1;
        Running running{echo_path(), options};
        Client longest{running.port()};
        Client later{running.port()};
        longest.send("GET /1 HTTP/1.1\r\nHost: example\r\n");
        REQUIRE(eventually([&] { return running.server().stats().buffered_bytes > 0; }));
        const auto one_head = running.server().stats().buffered_bytes;
        later.send("GET /2 HTTP/1.1\r\nHost: example\r\n");
        REQUIRE(eventually([&] { return running.server().stats().buffered_bytes > one_head; }));
        Client newcomer{running.port()};
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(longest.closed_by_server());
        later.send("\r\n");
        CHECK(later.receive(1).find("\r\n\r\n/2") != std::string::npos);
        CHECK(running.server().stats().evictions == 1);
        CHECK(running.server().stats().refusals == 0);
    }

    TEST_CASE("at the cap, with every connection owed an answer, a newcomer is refused and the others served")
    {
        std::atomic<bool> ready{false};
        cw::EventHttpServerOptions options;
        options.max_connections = 2;
        options.threads = 1;
        options.park_limit = 10min;
        Running running{
            [&](const cw::HttpRequestHead& request, bool) {
                return ready ? std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", request.path, {}}}
                             : std::nullopt;
            },
            options};
        Client first{running.port()};
        Client second{running.port()};
        first.send("GET /1 HTTP/1.1\r\n\r\n");
        second.send("GET /2 HTTP/1.1\r\n\r\n");
        REQUIRE(eventually([&] { return running.server().stats().connections == 2; }));
        Client third{running.port()};
        CHECK(third.closed_by_server());
        CHECK(running.server().stats().refusals == 1);
        ready = true;
        running.server().wake();
        CHECK(first.receive(1).find("\r\n\r\n/1") != std::string::npos);
        CHECK(second.receive(1).find("\r\n\r\n/2") != std::string::npos);
    }

    TEST_CASE("at the cap, the connection idle longest makes room for a newcomer")
    {
        cw::EventHttpServerOptions options;
        options.max_connections = 3;
        options.threads = 1;
        Running running{echo_path(), options};
        // Campers: each asked once and now holds a keep-alive slot.
        Client oldest{running.port()};
        oldest.send("GET /a HTTP/1.1\r\n\r\n");
        REQUIRE(oldest.receive(1).find("/a") != std::string::npos);
        Client middle{running.port()};
        middle.send("GET /b HTTP/1.1\r\n\r\n");
        REQUIRE(middle.receive(1).find("/b") != std::string::npos);
        Client newest{running.port()};
        newest.send("GET /c HTTP/1.1\r\n\r\n");
        REQUIRE(newest.receive(1).find("/c") != std::string::npos);

        Client newcomer{running.port()};
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(oldest.closed_by_server());
        middle.send("GET /b2 HTTP/1.1\r\n\r\n");
        CHECK(middle.receive(1).find("/b2") != std::string::npos);
        CHECK(running.server().stats().evictions == 1);
    }

    TEST_CASE("at the cap, with several loops, every newcomer is answered and the cap holds")
    {
        // Loops own their connections; campers may all sit on one of them.
        cw::EventHttpServerOptions options;
        options.max_connections = 8;
        options.threads = 4;
        Running running{echo_path(), options};
        std::vector<std::unique_ptr<Client>> clients;
        for (int i = 0; i < 40; ++i) {
            clients.push_back(std::make_unique<Client>(running.port()));
            clients.back()->send("GET /n" + std::to_string(i) + " HTTP/1.1\r\n\r\n");
            CAPTURE(i);
            CHECK(clients.back()->receive(1).find("\r\n\r\n/n" + std::to_string(i)) != std::string::npos);
        }
        CHECK(running.server().stats().refusals == 0);
        CHECK(running.server().stats().connections <= 8);
    }

    TEST_CASE("when descriptors run out, accepting pauses instead of spinning, then resumes")
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.accept_pause = 100ms;
        Running running{echo_path(), options};
        Client client{running.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        client.connect();  // completes in the kernel's backlog; accept4 gets EMFILE
        client.send("GET /waited HTTP/1.1\r\n\r\n");
        REQUIRE(eventually([&] { return running.server().stats().accept_pauses >= 1; }));
        // A window rather than a condition: what is checked is that nothing
        // happens. A loop woken again at once fails thousands of times in it;
        // a paused one at most once per pause.
        const auto before = running.server().stats().accept_pauses;
        std::this_thread::sleep_for(500ms);
        CHECK(running.server().stats().accept_pauses - before <= 500ms / options.accept_pause + 1);
        exhaustion.release();
        CHECK(client.receive(1).find("\r\n\r\n/waited") != std::string::npos);
    }

    TEST_CASE("out of descriptors, each newcomer costs exactly one idle connection, the oldest")
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        Running running{echo_path(), options};
        Client oldest{running.port()};
        oldest.send("GET /a HTTP/1.1\r\n\r\n");
        REQUIRE(oldest.receive(1).find("/a") != std::string::npos);
        Client newer{running.port()};
        newer.send("GET /b HTTP/1.1\r\n\r\n");
        REQUIRE(newer.receive(1).find("/b") != std::string::npos);
        Client newcomer{running.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        newcomer.connect();
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(oldest.closed_by_server());
        // Having accepted the newcomer, the server is out of descriptors
        // again with nobody waiting: the other keep-alive caller stays.
        newer.send("GET /b2 HTTP/1.1\r\n\r\n");
        CHECK(newer.receive(1).find("/b2") != std::string::npos);
        CHECK(running.server().stats().evictions == 1);
        CHECK(running.server().stats().accept_pauses == 0);
    }

    TEST_CASE("out of descriptors, a connection whose request is not read yet is not taken for idle")
    {
        HeldLoop held;
        Client first{held.port(), Client::Connect::later};
        Client second{held.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        exhaustion.give_back_one();
        first.connect();
        first.send("GET /first HTTP/1.1\r\n\r\n");
        second.connect();
        second.send("GET /second HTTP/1.1\r\n\r\n");
        held.release();
        // `first` takes the free descriptor; `second` waits for it to be
        // answered and idle, not the other way round.
        CHECK(first.receive(1).find("\r\n\r\n/first") != std::string::npos);
        CHECK(second.receive(1).find("\r\n\r\n/second") != std::string::npos);
        CHECK(held.holder_answered());
    }

    TEST_CASE("out of descriptors, a connection that has not had time to ask is not given up for a later caller")
    {
        HeldLoop held;
        Client first{held.port(), Client::Connect::later};
        Client second{held.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        exhaustion.give_back_one();
        first.connect();  // connected, its request not sent yet
        second.connect();
        second.send("GET /second HTTP/1.1\r\n\r\n");
        held.release();
        // `first` is accepted into the free descriptor; `second` waits.
        REQUIRE(eventually([&] { return held.server().stats().accept_pauses >= 1; }));
        first.send("GET /first HTTP/1.1\r\n\r\n");
        CHECK(first.receive(1).find("\r\n\r\n/first") != std::string::npos);
        CHECK(second.receive(1).find("\r\n\r\n/second") != std::string::npos);
    }

    TEST_CASE("at the cap, a newcomer handed to another loop still costs an idle connection there")
    {
        auto options = HeldLoop::default_options();
        options.threads = 2;
        options.max_connections = 2;
        HeldLoop held{options};  // the first loop, its one connection never idle
        Client camper{held.port()};
        camper.send("GET /camper HTTP/1.1\r\n\r\n");
        REQUIRE(camper.receive(1).find("\r\n\r\n/camper") != std::string::npos);  // the second loop's
        held.release();
        REQUIRE(held.holder_answered());
        REQUIRE(held.server().stats().connections == 2);
        // The newcomer goes to the first loop, which hands it to the second.
        REQUIRE(eventually([&] { return held.first_loop_waiting(); }));
        Client newcomer{held.port()};
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(camper.closed_by_server());
        CHECK(held.server().stats().connections <= 2);
        CHECK(held.server().stats().evictions == 1);
    }

    TEST_CASE("out of descriptors, a loop with nothing idle has another loop give up its idle connection")
    {
        auto options = HeldLoop::default_options();
        options.threads = 2;
        HeldLoop held{options};  // the first loop, its one connection never idle
        Client camper{held.port()};
        camper.send("GET /camper HTTP/1.1\r\n\r\n");
        REQUIRE(camper.receive(1).find("\r\n\r\n/camper") != std::string::npos);  // the second loop's
        held.release();
        REQUIRE(held.holder_answered());
        Client newcomer{held.port(), Client::Connect::later};
        // The newcomer wakes the first loop only: the second never tries to
        // accept it, so only a request from the first makes it give up its camper.
        REQUIRE(eventually([&] { return held.first_loop_waiting(); }));
        DescriptorExhaustion exhaustion;
        newcomer.connect();
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(camper.closed_by_server());
        CHECK(held.server().stats().evictions == 1);
    }
}
