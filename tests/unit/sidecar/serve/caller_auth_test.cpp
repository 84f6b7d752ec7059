#include <doctest/doctest.h>

#include "log_capture.hpp"

#include <algorithm>
#include <array>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "fake_clock.hpp"
#include "sidecar/serve/caller_auth.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

const std::string k_static = "static-caller-token-0123456789abcdef";

}  // namespace

TEST_SUITE("sidecar::CallerAuth")
{
    TEST_CASE("the pod token and an accepted token file are told apart, and anything else is refused")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        cw::TokenSource accepted{dir.write("static", k_static), clock, {.min_length = 32, .accept_previous = false}};
        pod.reload();
        accepted.reload();
        cw::CallerAuth auth{pod, {&accepted}, clock};
        CHECK(std::get<cw::CallerKind>(auth.check("pod-token")) == cw::CallerKind::pod_token);
        CHECK(std::get<cw::CallerKind>(auth.check(k_static)) == cw::CallerKind::accepted_token);
        CHECK(std::get<cw::CallerRefusal>(auth.check("wrong")).status == 403);
        CHECK(std::get<cw::CallerRefusal>(auth.check(std::nullopt)).status == 401);
    }

    TEST_CASE("replacing the Secret revokes the old static token at once")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        const auto file = dir.write("static", k_static);
        cw::TokenSource accepted{file, clock, {.min_length = 32, .accept_previous = false}};
        pod.reload();
        accepted.reload();
        cw::CallerAuth auth{pod, {&accepted}, clock};
        dir.write("static", k_static + "-rotated");
        clock.advance(2s);
        CHECK(std::get<cw::CallerKind>(auth.check(k_static + "-rotated")) == cw::CallerKind::accepted_token);
        CHECK(std::get<cw::CallerRefusal>(auth.check(k_static)).status == 403);
    }

    TEST_CASE("an emptied or deleted static token file revokes its value within a second, events or not")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        const auto file = dir.write("static", k_static);
        cw::TokenSource accepted{file, clock, {.min_length = 32, .accept_previous = false, .keep_last_good = false}};
        pod.reload();
        accepted.reload();
        cw::CallerAuth auth{pod, {&accepted}, clock};
        REQUIRE(std::get<cw::CallerKind>(auth.check(k_static)) == cw::CallerKind::accepted_token);

        // Nobody reloads the file in between (no watcher here): the next
        // caller's check notices, at once, since the file looks changed.
        std::filesystem::remove(file);
        CHECK(std::get<cw::CallerRefusal>(auth.check(k_static)).status == 403);
        CHECK(std::get<cw::CallerKind>(auth.check("pod-token")) == cw::CallerKind::pod_token);

        // Written again, then spoiled in place keeping its size, inode and
        // times, so stat() sees nothing: the once-a-second re-read notices.
        dir.write("static", k_static);
        CHECK(std::get<cw::CallerKind>(auth.check(k_static)) == cw::CallerKind::accepted_token);
        struct stat before {};
        REQUIRE(::stat(file.c_str(), &before) == 0);
        const int fd = ::open(file.c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        CHECK(::pwrite(fd, "\x01", 1, 5) == 1);
        const std::array<timespec, 2> times{before.st_atim, before.st_mtim};
        CHECK(::futimens(fd, times.data()) == 0);
        ::close(fd);
        clock.advance(1s);
        CHECK(std::get<cw::CallerRefusal>(auth.check(k_static)).status == 403);
    }

    TEST_CASE("a too-short accepted token is never accepted")
    {
        cw::test::TempDir dir;
        cw::TokenSource accepted{dir.write("static", "short"), cw::real_clock(), {.min_length = 32}};
        CHECK(accepted.reload() == cw::TokenChange::unavailable);
        CHECK(accepted.problem() == "shorter than 32 characters");
        CHECK_FALSE(accepted.accepts("short"));
    }

    TEST_CASE("a flood of wrong tokens re-reads each file once per second and logs one line per window")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        cw::TokenSource accepted{dir.write("static", k_static), clock, {.min_length = 32, .accept_previous = false}};
        pod.reload();
        accepted.reload();
        cw::CallerAuth auth{pod, {&accepted}, clock};
        const auto pod_reads = pod.reads();
        const auto accepted_reads = accepted.reads();
        LogCapture log;

        // 10,000 wrong tokens spread over 20 seconds of fake time.
        for (int i = 0; i < 10'000; ++i) {
            CHECK(std::get<cw::CallerRefusal>(auth.check("wrong-" + std::to_string(i))).status == 403);
            clock.advance(2ms);
        }
        CHECK(pod.reads() - pod_reads == 20);
        CHECK(accepted.reads() - accepted_reads == 20);
        CHECK(log.lines() == 2);
        CHECK(log.text().find("suppressed_since_last=4999") != std::string::npos);
        CHECK(log.text().find("wrong-") == std::string::npos);

        // The fake clock now stands on the next slot: one more wrong token
        // takes it, and from then on the limit holds every re-read...
        CHECK(std::get<cw::CallerRefusal>(auth.check("wrong-again")).status == 403);
        const auto held_reads = pod.reads();
        CHECK(std::get<cw::CallerRefusal>(auth.check("wrong-again")).status == 403);
        CHECK(pod.reads() == held_reads);

        // ...except for a file that changed: a rotation the caller saw first
        // is picked up at once, in the same instant, flood or not.
        dir.write("pod", "pod-token-2");
        const auto verdict = auth.check("pod-token-2");
        REQUIRE(std::holds_alternative<cw::CallerKind>(verdict));
        CHECK(std::get<cw::CallerKind>(verdict) == cw::CallerKind::pod_token);
    }

    TEST_CASE("a rotation the caller saw first is accepted at once even when stat() cannot tell it apart")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("pod-token-aaaa");
        cw::test::FakeClock clock;
        cw::TokenSource pod{volume.token_path(), clock};
        pod.reload();
        cw::CallerAuth auth{pod, {}, clock};
        // A wrong token takes the re-read slot of this second.
        CHECK(std::get<cw::CallerRefusal>(auth.check("wrong")).status == 403);

        volume.write_same_stat("pod-token-bbbb");
        const auto verdict = auth.check("pod-token-bbbb");
        REQUIRE(std::holds_alternative<cw::CallerKind>(verdict));
        CHECK(std::get<cw::CallerKind>(verdict) == cw::CallerKind::pod_token);
        CHECK(std::get<cw::CallerKind>(auth.check("pod-token-aaaa")) == cw::CallerKind::pod_token);
    }

    TEST_CASE("a flood of wrong tokens does not hide a caller sending none")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        pod.reload();
        cw::CallerAuth auth{pod, {}, clock};
        LogCapture log;
        for (int i = 0; i < 100; ++i) {
            (void)auth.check("wrong");
        }
        (void)auth.check(std::nullopt);
        CHECK(log.lines() == 2);
        CHECK(log.text().find("no Authorization header") != std::string::npos);
    }

    TEST_CASE("a wall clock stepped back does not silence warnings")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        cw::TokenSource pod{dir.write("pod", "pod-token"), clock};
        pod.reload();
        cw::CallerAuth auth{pod, {}, clock};
        LogCapture log;
        (void)auth.check("wrong");
        clock.advance(-1h);
        (void)auth.check("wrong");
        CHECK(log.lines() == 2);
    }
}
