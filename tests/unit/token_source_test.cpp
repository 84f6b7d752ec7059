#include <doctest/doctest.h>

#include "sidecar/token_source.hpp"
#include "temp_dir.hpp"

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
}
