#include <doctest/doctest.h>

#include <condition_variable>
#include <fstream>
#include <thread>

#include "sidecar/exchange/token_watcher.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

// Counts listener calls and lets a test wait for the next one.
class ChangeCounter {
public:
    void changed()
    {
        const std::lock_guard lock{m_mutex};
        ++m_count;
        m_cv.notify_all();
    }

    bool wait_for(int count, std::chrono::seconds limit = 10s)
    {
        std::unique_lock lock{m_mutex};
        return m_cv.wait_for(lock, limit, [&] { return m_count >= count; });
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    int m_count = 0;
};

// Runs a watcher on its own thread for the life of the scope.
class RunningWatcher {
public:
    RunningWatcher(cw::TokenSource& tokens, cw::Millis poll) : m_watcher({&tokens}, poll), m_thread([this] { m_watcher.run(); }) {}
    ~RunningWatcher()
    {
        m_watcher.stop();
        m_thread.join();
    }
    RunningWatcher(const RunningWatcher&) = delete;
    RunningWatcher& operator=(const RunningWatcher&) = delete;

private:
    cw::TokenWatcher m_watcher;
    std::thread m_thread;
};

}  // namespace

TEST_SUITE("sidecar::TokenWatcher")
{
    // The poll interval is an hour: only directory events can explain a change.
    TEST_CASE("notices every kubelet rotation through directory events, not just the first")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume volume{dir.path() / "tokens"};
        volume.write("generation-1");
        cw::TokenSource tokens{volume.token_path()};
        ChangeCounter counter;
        tokens.set_listener([&] { counter.changed(); });
        tokens.reload();
        RunningWatcher watcher{tokens, 1h};

        for (int generation = 2; generation <= 4; ++generation) {
            volume.write("generation-" + std::to_string(generation));
            REQUIRE(counter.wait_for(generation));
            CHECK(tokens.current() == "generation-" + std::to_string(generation));
        }
    }

    TEST_CASE("notices a plain file rewritten in place")
    {
        cw::test::TempDir dir;
        const auto file = dir.write("token", "first");
        cw::TokenSource tokens{file};
        ChangeCounter counter;
        tokens.set_listener([&] { counter.changed(); });
        tokens.reload();
        RunningWatcher watcher{tokens, 1h};
        std::ofstream{file, std::ios::trunc} << "second";
        REQUIRE(counter.wait_for(2));
        CHECK(tokens.current() == "second");
    }

    TEST_CASE("finds a token whose directory appears only after start, by the timer")
    {
        cw::test::TempDir dir;
        cw::test::KubeletVolume* volume = nullptr;
        cw::TokenSource tokens{dir.path() / "later" / "oidc-token"};
        ChangeCounter counter;
        tokens.set_listener([&] { counter.changed(); });
        RunningWatcher watcher{tokens, 50ms};
        cw::test::KubeletVolume created{dir.path() / "later"};
        volume = &created;
        volume->write("arrived");
        REQUIRE(counter.wait_for(1));
        CHECK(tokens.current() == "arrived");
    }
}
