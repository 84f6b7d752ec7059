#include <doctest/doctest.h>

#include "common/file_reader.hpp"
#include "temp_dir.hpp"

TEST_SUITE("common::file_reader")
{
    TEST_CASE("reads a file through a symlink")
    {
        cw::test::TempDir dir;
        const auto target = dir.write("real", "content");
        std::filesystem::create_symlink(target, dir.path() / "link");
        const auto result = cw::read_small_file(dir.path() / "link", 100);
        REQUIRE(std::holds_alternative<std::string>(result));
        CHECK(std::get<std::string>(result) == "content");
    }

    TEST_CASE("a missing or oversized file is an error value with a reason")
    {
        cw::test::TempDir dir;
        const auto missing = cw::read_small_file(dir.path() / "absent", 100);
        REQUIRE(std::holds_alternative<cw::FileError>(missing));
        CHECK(std::get<cw::FileError>(missing).reason == "No such file or directory");
        const auto big = cw::read_small_file(dir.write("big", std::string(200, 'x')), 100);
        REQUIRE(std::holds_alternative<cw::FileError>(big));
        CHECK(std::get<cw::FileError>(big).reason == "larger than 100 bytes");
    }

    TEST_CASE("a file over the bound is refused however many reads it takes")
    {
        // Larger than the bound in total, each piece the kernel hands back smaller.
        cw::test::TempDir dir;
        const auto big = cw::read_small_file(dir.write("big", std::string(20'000, 'x')), 5'000);
        REQUIRE(std::holds_alternative<cw::FileError>(big));
        CHECK(std::get<cw::FileError>(big).reason == "larger than 5000 bytes");
        const auto exact = cw::read_small_file(dir.write("exact", std::string(5'000, 'x')), 5'000);
        REQUIRE(std::holds_alternative<std::string>(exact));
        CHECK(std::get<std::string>(exact).size() == 5'000);
    }

    TEST_CASE("only trailing whitespace is trimmed")
    {
        CHECK(cw::trim_trailing_whitespace("  token \r\n\t") == "  token");
        CHECK(cw::trim_trailing_whitespace("\n") == "");
    }
}
