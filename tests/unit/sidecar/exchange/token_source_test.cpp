#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "fake_clock.hpp"
#include "jwt_builder.hpp"
#include "sidecar/exchange/token_source.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

TEST_SUITE("sidecar::TokenSource")
{
    TEST_CASE("follows a kubelet rotation and keeps accepting the previous token")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("token-one");
        cw::TokenSource tokens{volume.token_path()};
        int changes = 0;
        tokens.set_listener([&] { ++changes; });

        CHECK(tokens.reload() == cw::TokenChange::changed);
        CHECK(tokens.current() == "token-one");
        CHECK(tokens.available());
        CHECK(tokens.reload() == cw::TokenChange::unchanged);

        volume.write("token-two");
        CHECK(tokens.reload() == cw::TokenChange::changed);
        CHECK(tokens.current() == "token-two");
        CHECK(changes == 2);
        CHECK(tokens.accepts("token-two"));
        CHECK(tokens.accepts("token-one"));
        CHECK_FALSE(tokens.accepts("token-three"));
        CHECK_FALSE(tokens.accepts(""));

        volume.write("token-three");
        tokens.reload();
        CHECK_FALSE(tokens.accepts("token-one"));
    }

    TEST_CASE("a kubelet rotation looks changed even when the new file has the old one's inode, size and mtime")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("token-aaaa");
        cw::TokenSource tokens{volume.token_path()};
        tokens.reload();
        CHECK_FALSE(tokens.changed_since_read());

        volume.write_same_stat("token-bbbb");
        CHECK(tokens.changed_since_read());
        CHECK(tokens.reload() == cw::TokenChange::changed);
        CHECK_FALSE(tokens.changed_since_read());
    }

    TEST_CASE("a missing file at start is a problem to report, not a crash")
    {
        cw::test::TempDir dir;
        cw::TokenSource tokens{dir.path() / "absent"};
        CHECK(tokens.reload() == cw::TokenChange::unavailable);
        CHECK_FALSE(tokens.current());
        CHECK_FALSE(tokens.available());
        CHECK(tokens.problem() == "No such file or directory");
        CHECK_FALSE(tokens.accepts(""));
    }

    TEST_CASE("empty files and tokens with line breaks inside are refused")
    {
        cw::test::TempDir dir;
        cw::TokenSource empty{dir.write("empty", "\n")};
        CHECK(empty.reload() == cw::TokenChange::unavailable);
        CHECK(empty.problem() == "file is empty");
        cw::TokenSource broken{dir.write("broken", "abc\r\nInjected: header")};
        CHECK(broken.reload() == cw::TokenChange::unavailable);
        CHECK(broken.problem().find("line break") != std::string::npos);
        // Not ASCII: no JWT, and it would not survive the JSON body of an oidc exchange.
        cw::TokenSource binary{dir.write("binary", "eyJhbGciOi\xff\xfe.payload.sig")};
        CHECK(binary.reload() == cw::TokenChange::unavailable);
        CHECK(binary.problem().find("non-ASCII") != std::string::npos);
    }

    TEST_CASE("a token of exactly the minimum length is accepted and one character less is refused")
    {
        cw::test::TempDir dir;
        const cw::TokenRules rules{.min_length = 32, .accept_previous = false};
        // What `openssl rand -hex 16` prints: 32 characters.
        const std::string exact = "0123456789abcdef0123456789abcdef";
        cw::TokenSource enough{dir.write("exact", exact + "\n"), cw::real_clock(), rules};
        CHECK(enough.reload() == cw::TokenChange::changed);
        CHECK(enough.accepts(exact));
        cw::TokenSource short_one{dir.write("short", exact.substr(1) + "\n"), cw::real_clock(), rules};
        CHECK(short_one.reload() == cw::TokenChange::unavailable);
        CHECK(short_one.problem() == "shorter than 32 characters");
        CHECK_FALSE(short_one.accepts(exact.substr(1)));
    }

    TEST_CASE("a file that vanishes keeps the last good token for the next exchange")
    {
        cw::test::TempDir dir;
        const auto file = dir.write("token", "kept-token\n");
        cw::TokenSource tokens{file};
        tokens.reload();
        std::filesystem::remove(file);
        CHECK(tokens.reload() == cw::TokenChange::unavailable);
        CHECK(tokens.current() == "kept-token");
        CHECK(tokens.accepts("kept-token"));
    }

    TEST_CASE("a static caller token's file emptied, deleted or spoiled revokes its value")
    {
        const cw::TokenRules rules{.min_length = 32, .accept_previous = false, .keep_last_good = false};
        const std::string secret = "static-caller-token-0123456789abcdef";
        const std::pair<const char*, std::function<void(const std::filesystem::path&)>> spoilers[] = {
            {"emptied",
             [](const auto& file) {
                 std::ofstream{file, std::ios::trunc};
             }},
            {"deleted", [](const auto& file) { std::filesystem::remove(file); }},
            {"made too short",
             [](const auto& file) {
                 std::ofstream{file, std::ios::trunc} << "0123456789";
             }},
            {"given a line break",
             [](const auto& file) {
                 std::ofstream{file, std::ios::trunc} << "two\nlines";
             }},
        };
        for (const auto& [how, spoil] : spoilers) {
            CAPTURE(how);
            cw::test::TempDir dir;
            const auto file = dir.write("static", secret);
            cw::TokenSource accepted{file, cw::real_clock(), rules};
            REQUIRE(accepted.reload() == cw::TokenChange::changed);
            REQUIRE(accepted.accepts(secret));
            spoil(file);
            CHECK(accepted.reload() == cw::TokenChange::unavailable);
            CHECK_FALSE(accepted.accepts(secret));
            CHECK_FALSE(accepted.available());
            CHECK_FALSE(accepted.problem().empty());
            dir.write("static", secret);
            CHECK(accepted.reload() == cw::TokenChange::changed);
            CHECK(accepted.accepts(secret));
        }
    }

    TEST_CASE("the previous token is accepted only until its own exp")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        cw::test::FakeClock clock;
        const auto exp = std::chrono::duration_cast<std::chrono::seconds>((clock.now() + 10min).time_since_epoch());
        const std::string old_token = cw::test::jwt_with(R"({"sub":"app","exp":)" + std::to_string(exp.count()) + "}");
        const std::string new_token = cw::test::jwt_with(R"({"sub":"app","exp":9999999999})");
        volume.write(old_token);
        cw::TokenSource tokens{volume.token_path(), clock};
        tokens.reload();
        volume.write(new_token);
        tokens.reload();
        clock.advance(10min - 1s);
        CHECK(tokens.accepts(old_token));
        clock.advance(1s);
        CHECK_FALSE(tokens.accepts(old_token));
        CHECK(tokens.accepts(new_token));
    }

    TEST_CASE("concurrent reloads never go back to an older token")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("token-0");
        cw::TokenSource tokens{volume.token_path()};
        tokens.reload();
        std::atomic<bool> done{false};
        std::atomic<int> went_back{0};
        std::vector<std::thread> reloaders;
        for (int i = 0; i < 4; ++i) {
            reloaders.emplace_back([&] {
                int newest = 0;
                while (!done) {
                    tokens.reload();
                    const int seen = std::stoi(tokens.current()->substr(6));
                    if (seen < newest) {
                        ++went_back;
                    }
                    newest = std::max(newest, seen);
                }
            });
        }
        for (int n = 1; n <= 500; ++n) {
            volume.write("token-" + std::to_string(n));
        }
        done = true;
        for (auto& thread : reloaders) {
            thread.join();
        }
        tokens.reload();
        CHECK(went_back == 0);
        CHECK(tokens.current() == "token-500");
    }
    TEST_CASE("a reload that began first finishes first: a slow read never overwrites a newer token")
    {
        // The first reload reads a FIFO, so it stays inside its read until
        // the test writes; meanwhile kubelet rotates to a newer token and a
        // second reload starts. The second must wait for the first: were
        // they to overlap, the slow one would commit last and the sidecar
        // would go back to the older token.
        namespace fs = std::filesystem;
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("token-1");
        cw::TokenSource tokens{volume.token_path()};
        tokens.reload();
        const fs::path slow = dir.path() / "tokens" / "..slow";
        fs::create_directory(slow);
        REQUIRE(::mkfifo((slow / "oidc-token").c_str(), 0600) == 0);
        fs::create_directory_symlink("..slow", dir.path() / "tokens" / "..data_tmp");
        fs::rename(dir.path() / "tokens" / "..data_tmp", dir.path() / "tokens" / "..data");

        std::thread first{[&tokens] { tokens.reload(); }};
        // Opening the write end returns once the first reload has opened the
        // FIFO: from then on it is inside its read.
        const int writer = ::open((slow / "oidc-token").c_str(), O_WRONLY | O_CLOEXEC);
        REQUIRE(writer >= 0);
        volume.write("token-3");
        std::promise<void> second_done;
        std::thread second{[&tokens, &second_done] {
            tokens.reload();
            second_done.set_value();
        }};
        // Overlapping, the second reload would be done at once; serialised,
        // it cannot finish before the first, so this wait runs out.
        const bool finished_early = second_done.get_future().wait_for(1s) == std::future_status::ready;
        const std::string older = "token-2";
        REQUIRE(::write(writer, older.data(), older.size()) == static_cast<ssize_t>(older.size()));
        ::close(writer);
        first.join();
        second.join();
        CHECK_FALSE(finished_early);
        CHECK(tokens.current() == "token-3");
    }
}
