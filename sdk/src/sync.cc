#include "sluice/sync.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {
namespace {

thread_local unsigned thread_index = 0;  // a pool thread's index in its pool

}  // namespace

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

namespace {

thread_local SyncPool* current_pool = nullptr;

}  // namespace

SyncPool* SyncPool::Current() { return current_pool; }

void SyncPool::Submit(std::function<void()> job, std::optional<ThreadSensitive> slot) {
  Reserve();
  Push(std::move(job), slot);
}

void SyncPool::Reserve() {
  std::lock_guard lock(state_->mu);
  if (state_->stopping) throw Disconnected("the worker is stopping: no new blocking calls");
  if (state_->queued >= options_.max_queued) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    throw SyncPoolFull("SyncToAsync: " + std::to_string(state_->queued) +
                       " blocking calls already wait for a thread");
  }
  ++state_->queued;
}

void SyncPool::Push(std::function<void()> job, std::optional<ThreadSensitive> slot) noexcept {
  {
    std::lock_guard lock(state_->mu);
    if (slot) {
      state_->own[slot->slot() % options_.threads].push_back(std::move(job));
    } else {
      state_->shared.push_back(std::move(job));
    }
  }
  // Every thread may be the one: its own queue, or the shared one.
  state_->wake.notify_all();
}

std::function<void()> SyncPool::Take(unsigned index) {
  auto& own = state_->own[index];
  auto& from = !own.empty() ? own : state_->shared;
  if (from.empty()) return nullptr;
  std::function<void()> job = std::move(from.front());
  from.pop_front();
  --state_->queued;
  // Counted as running under the lock, so queued() + running() never reads 0 in between.
  running_.fetch_add(1, std::memory_order_relaxed);
  return job;
}

void SyncPool::Run(std::function<void()>& job) {
  job();  // never throws: SyncCall catches what its function throws
  job = nullptr;
  running_.fetch_sub(1, std::memory_order_relaxed);
}

void SyncPool::Loop(unsigned index) {
  current_pool = this;
  thread_index = index;
  std::unique_lock lock(state_->mu);
  for (;;) {
    // Stop once nothing is queued or reserved (a reserved call is about to be pushed).
    state_->wake.wait(lock, [&] {
      return !state_->own[index].empty() || !state_->shared.empty() ||
             (state_->stopping && state_->queued == 0);
    });
    std::function<void()> job = Take(index);
    if (!job) return;
    lock.unlock();
    Run(job);
    lock.lock();
  }
}

void SyncPool::HelpUntil(const std::function<bool()>& done) {
  if (current_pool != this) throw std::logic_error("SyncPool::HelpUntil off the pool's threads");
  std::unique_lock lock(state_->mu);
  for (;;) {
    state_->wake.wait(lock, [&] {
      return done() || !state_->own[thread_index].empty() || !state_->shared.empty();
    });
    if (done()) return;
    std::function<void()> job = Take(thread_index);
    lock.unlock();
    Run(job);
    lock.lock();
  }
}

void SyncPool::Notify() {
  { std::lock_guard lock(state_->mu); }  // a waiter checks `done` under the lock
  state_->wake.notify_all();
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

void ThrowAsyncToSyncOnLoop() {
  throw std::logic_error(
      "AsyncToSync called on an event-loop thread: it would block the loop; co_await the call "
      "instead, or run the blocking code through SyncToAsync");
}
bool OnEventLoopThread() { return on_event_loop; }

std::optional<boost::asio::any_io_executor> CallerExecutor() { return caller_executor; }
void SetCallerExecutor(std::optional<boost::asio::any_io_executor> executor) {
  caller_executor = std::move(executor);
}

}  // namespace internal
}  // namespace sluice
