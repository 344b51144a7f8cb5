#include "sluice/sync.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {

// One mutex for the pool: its calls block for milliseconds or more, so a lock per call is
// noise. Any-thread calls share one queue; thread-sensitive calls wait in their thread's.
struct SyncPool::State {
  mutable std::mutex mu;
  std::condition_variable wake;
  std::deque<std::function<void()>> shared;
  std::vector<std::deque<std::function<void()>>> own;
  size_t queued = 0;
  bool stopping = false;
  std::vector<std::thread> threads;
};

SyncPool::SyncPool(Options options) : options_(options), state_(std::make_unique<State>()) {
  if (options_.threads == 0) throw std::invalid_argument("a SyncPool needs a thread");
  state_->own.resize(options_.threads);
  state_->threads.reserve(options_.threads);
  for (unsigned i = 0; i < options_.threads; ++i) {
    state_->threads.emplace_back([this, i] { Loop(i); });
  }
}

SyncPool::~SyncPool() { Shutdown(); }

namespace {

std::mutex default_mu;
std::optional<SyncPool::Options> default_options;
std::atomic<SyncPool*> default_pool{nullptr};

}  // namespace

SyncPool& SyncPool::Default() {
  if (SyncPool* pool = default_pool.load(std::memory_order_acquire)) return *pool;
  std::lock_guard lock(default_mu);
  if (default_pool.load(std::memory_order_relaxed) == nullptr) {
    // Never destroyed: threads of a static could be joined after what they use is gone.
    // RunWorker shuts it down before the process exits.
    default_pool.store(new SyncPool(default_options.value_or(Options{})),
                       std::memory_order_release);
  }
  return *default_pool.load(std::memory_order_relaxed);
}

void SyncPool::Configure(Options options) {
  std::lock_guard lock(default_mu);
  if (default_pool.load(std::memory_order_relaxed) != nullptr) {
    throw std::logic_error("SyncPool::Configure after the default pool started");
  }
  default_options = options;
}

SyncPool* SyncPool::DefaultIfStarted() { return default_pool.load(std::memory_order_acquire); }

void SyncPool::ShutdownDefault() {
  if (SyncPool* pool = default_pool.load(std::memory_order_acquire)) pool->Shutdown();
}

void SyncPool::Submit(std::function<void()> job, std::optional<ThreadSensitive> slot) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) throw std::logic_error("SyncToAsync after the pool shut down");
    if (state_->queued >= options_.max_queued) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      throw SyncPoolFull("SyncToAsync: " + std::to_string(state_->queued) +
                         " blocking calls already wait for a thread");
    }
    ++state_->queued;
    if (slot) {
      state_->own[slot->slot() % options_.threads].push_back(std::move(job));
    } else {
      state_->shared.push_back(std::move(job));
    }
  }
  // Every thread may be the one: its own queue, or the shared one.
  state_->wake.notify_all();
}

void SyncPool::Loop(unsigned index) {
  auto& own = state_->own[index];
  std::unique_lock lock(state_->mu);
  for (;;) {
    state_->wake.wait(lock,
                      [&] { return !own.empty() || !state_->shared.empty() || state_->stopping; });
    auto& from = !own.empty() ? own : state_->shared;
    if (from.empty()) return;  // stopping, and nothing left
    std::function<void()> job = std::move(from.front());
    from.pop_front();
    --state_->queued;
    running_.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    job();  // never throws: SyncCall catches what f throws
    job = nullptr;
    running_.fetch_sub(1, std::memory_order_relaxed);
    lock.lock();
  }
}

void SyncPool::Shutdown() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  state_->wake.notify_all();
  for (std::thread& thread : state_->threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // shut down from one of its own jobs
    } else {
      thread.join();
    }
  }
}

ThreadSensitive SyncPool::NextSlot() {
  return ThreadSensitive(next_slot_.fetch_add(1, std::memory_order_relaxed) % options_.threads);
}

size_t SyncPool::queued() const {
  std::lock_guard lock(state_->mu);
  return state_->queued;
}

namespace internal {
namespace {

thread_local bool on_event_loop = false;
thread_local std::optional<boost::asio::any_io_executor> caller_executor;

}  // namespace

void MarkEventLoopThread(bool on) { on_event_loop = on; }
bool OnEventLoopThread() { return on_event_loop; }

std::optional<boost::asio::any_io_executor> CallerExecutor() { return caller_executor; }
void SetCallerExecutor(std::optional<boost::asio::any_io_executor> executor) {
  caller_executor = std::move(executor);
}

}  // namespace internal
}  // namespace sluice
