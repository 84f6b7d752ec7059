// The unit test runner. Log lines are silenced: tests assert on values, and
// the integration tests check what the binary really logs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <spdlog/spdlog.h>

int main(int argc, char** argv)
{
    spdlog::set_level(spdlog::level::off);
    return doctest::Context{argc, argv}.run();
}
