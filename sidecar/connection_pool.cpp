#include "sidecar/connection_pool.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace cw {

namespace {

class ElasticPool final : public httplib::TaskQueue {
public:
    ElasticPool(std::size_t max_threads, Millis idle_exit) : m_max_threads(max_threads), m_idle_exit(idle_exit) {}

    ~ElasticPool() override { shutdown(); }

    ElasticPool(const ElasticPool&) = delete;
    ElasticPool& operator=(const ElasticPool&) = delete;

    void enqueue(std::function<void()> task) override
    {
        std::vector<std::thread> finished;
        {
            const std::lock_guard lock{m_mutex};
            if (m_stopping) {
                return;  // only during shutdown, when the process is about to exit
            }
            m_tasks.push_back(std::move(task));
            // Compare with the queue, not with zero: an idle thread already
            // woken for an earlier task cannot take this one too, and a task
            // left queued behind a keep-alive connection may wait for minutes.
            if (m_tasks.size() > m_idle && m_threads.size() < m_max_threads) {
                std::thread worker{[this] { work(); }};
                const auto id = worker.get_id();
                m_threads.emplace(id, std::move(worker));
            }
            finished = take_finished();
        }
        m_ready.notify_one();
        join(finished);
    }

    void shutdown() override
    {
        std::map<std::thread::id, std::thread> threads;
        std::vector<std::thread> finished;
        {
            const std::lock_guard lock{m_mutex};
            m_stopping = true;
            threads.swap(m_threads);
            finished = take_finished();
        }
        m_ready.notify_all();
        for (auto& [id, thread] : threads) {
            thread.join();
        }
        join(finished);
    }

private:
    void work()
    {
        std::unique_lock lock{m_mutex};
        for (;;) {
            ++m_idle;
            const bool has_task =
                m_ready.wait_for(lock, m_idle_exit, [this] { return m_stopping || !m_tasks.empty(); });
            --m_idle;
            if (!m_tasks.empty()) {
                auto task = std::move(m_tasks.front());
                m_tasks.pop_front();
                lock.unlock();
                task();
                lock.lock();
                continue;
            }
            if (m_stopping || !has_task) {
                break;
            }
        }
        // Idle too long (or stopping): leave, and let a later call join us.
        if (!m_stopping) {
            if (auto it = m_threads.find(std::this_thread::get_id()); it != m_threads.end()) {
                m_finished.push_back(std::move(it->second));
                m_threads.erase(it);
            }
        }
    }

    std::vector<std::thread> take_finished()
    {
        std::vector<std::thread> finished;
        finished.swap(m_finished);
        return finished;
    }

    static void join(std::vector<std::thread>& threads)
    {
        for (auto& thread : threads) {
            thread.join();
        }
    }

    const std::size_t m_max_threads;
    const Millis m_idle_exit;
    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_tasks;
    std::map<std::thread::id, std::thread> m_threads;
    std::vector<std::thread> m_finished;
    std::size_t m_idle = 0;
    bool m_stopping = false;
};

}  // namespace

std::unique_ptr<httplib::TaskQueue> make_connection_pool(std::size_t max_threads, Millis idle_exit)
{
    return std::make_unique<ElasticPool>(max_threads, idle_exit);
}

}  // namespace cw
