#pragma once

// Bridges between blocking code and the event loops (asgiref's sync_to_async and
// async_to_sync). A worker's event loops each run many connections on one thread, so code
// that blocks (a database driver, a file lock, a sleep) must not run on them: SyncToAsync
// moves it to a bounded pool of threads and resumes the caller when it is done; AsyncToSync
// lets that blocking code call back into the asynchronous API (a layer GroupSend, a Send).

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/consumer.h"

namespace sluice {

/// SyncToAsync found the pool's queue full: more blocking calls wait than
/// SyncPool::Options::max_queued. The caller gets it at once (overload is answered, not
/// buffered).
class SyncPoolFull final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thread-sensitive execution: every call made with the same ThreadSensitive runs on the
/// same pool thread, in call order (asgiref's thread_sensitive=True, with one thread per
/// connection rather than one for the process). Consumer::thread_sensitive() gives a
/// connection's; connections are spread over the pool's threads.
class ThreadSensitive {
 public:
  explicit ThreadSensitive(unsigned slot) : slot_(slot) {}
  unsigned slot() const { return slot_; }

 private:
  unsigned slot_;
};

/// The bounded thread pool SyncToAsync runs blocking code on: `threads` threads, at most
/// `max_queued` calls waiting for one (SyncPoolFull past it). A call either takes any free
/// thread or, thread-sensitive, waits for its own. A pool thread blocked in AsyncToSync keeps
/// running its own queue's calls and the shared ones while it waits, so blocking code that
/// calls back into async code that calls blocking code again (on the same thread, or with
/// every thread waiting) does not deadlock. The pool cannot interrupt blocking code:
/// Shutdown waits for what runs.
/// Thread-safety: all members may be called from any thread. Lifetime: Default() lives for
/// the process; RunWorker shuts it down after the drain, while the event loops still run
/// (calls finishing then can still reach their connection).
class SyncPool {
 public:
  struct Options {
    unsigned threads = 16;
    size_t max_queued = 4096;
  };

  explicit SyncPool(Options options);
  ~SyncPool();  // Shutdown()
  SyncPool(const SyncPool&) = delete;
  SyncPool& operator=(const SyncPool&) = delete;

  /// The pool SyncToAsync uses. Configure() it before the first use (RunWorker does, from
  /// --sync-threads); afterwards Configure throws std::logic_error.
  static SyncPool& Default();
  static void Configure(Options options);
  /// Shuts the default pool down if it was started.
  static void ShutdownDefault();
  /// The default pool if something started it, else null (metrics read it without starting
  /// threads nobody uses).
  static SyncPool* DefaultIfStarted();

  /// Runs `job` on a pool thread (`slot`'s, when given): Reserve() then Push().
  void Submit(std::function<void()> job, std::optional<ThreadSensitive> slot = std::nullopt);
  /// Takes a place in the queue for one call: throws SyncPoolFull when it is full, and
  /// Disconnected once the pool is shutting down (the worker is stopping).
  void Reserve();
  /// Queues a call whose place was reserved. Never throws.
  void Push(std::function<void()> job, std::optional<ThreadSensitive> slot) noexcept;
  /// Stops taking calls, lets the queued ones run, and joins the threads.
  void Shutdown();

  /// A slot for a new connection (round robin over the threads).
  ThreadSensitive NextSlot();
  unsigned threads() const { return options_.threads; }
  /// Calls waiting for a thread (not the ones running).
  size_t queued() const;
  /// Calls running, until their job (and what it holds) is destroyed.
  size_t running() const { return running_.load(std::memory_order_relaxed); }
  /// Calls refused with SyncPoolFull.
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

  /// The pool whose thread this is, or null.
  static SyncPool* Current();
  /// On one of this pool's threads: runs its calls (own queue first, then the shared one)
  /// until `done()` holds. `done` is checked under the pool's lock, after every Notify().
  void HelpUntil(const std::function<bool()>& done);
  void Notify();

 private:
  struct State;
  void Loop(unsigned index);
  /// Takes the next call for thread `index` (lock held); empty when there is none.
  std::function<void()> Take(unsigned index);
  void Run(std::function<void()>& job);

  const Options options_;
  std::unique_ptr<State> state_;
  std::atomic<unsigned> next_slot_{0};
  std::atomic<size_t> running_{0};
  std::atomic<uint64_t> rejected_{0};
};

namespace internal {

/// Event-loop threads mark themselves, so blocking on them is refused (AsyncToSync) and so
/// SyncToAsync's pool threads are known not to be one.
void MarkEventLoopThread(bool on);
bool OnEventLoopThread();

/// While a SyncToAsync call runs: the executor of the coroutine that made it, which
/// AsyncToSync (without an executor) runs its awaitable on.
std::optional<boost::asio::any_io_executor> CallerExecutor();
void SetCallerExecutor(std::optional<boost::asio::any_io_executor> executor);

[[noreturn]] void ThrowAsyncToSyncOnLoop();

/// What a call returns, as a value: void as std::monostate.
template <class R>
using SyncResult = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

template <class F>
auto SyncCall(F f, std::optional<ThreadSensitive> slot) -> Task<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "SyncToAsync: return a value, not a reference");
  using Result = SyncResult<R>;
  SyncPool& pool = SyncPool::Default();
  auto executor = co_await boost::asio::this_coro::executor;
  // In the coroutine's body, where the caller can catch it: an exception thrown by the
  // initiation below would escape the event loop.
  pool.Reserve();
  std::optional<Result> result =
      co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                           void(std::exception_ptr, std::optional<Result>)>(
          [&](auto handler) {
            // The caller's executor stays busy (its loop does not run out of work) until the
            // result is posted back to it.
            auto job = [f = std::move(f), executor, handler = std::move(handler),
                        work = boost::asio::make_work_guard(executor)]() mutable {
              SetCallerExecutor(executor);
              std::exception_ptr error;
              std::optional<Result> value;
              try {
                if constexpr (std::is_void_v<R>) {
                  f();
                  value.emplace();
                } else {
                  value.emplace(f());
                }
              } catch (...) {
                error = std::current_exception();
              }
              SetCallerExecutor(std::nullopt);
              boost::asio::post(executor, [handler = std::move(handler), error,
                                           value = std::move(value)]() mutable {
                std::move(handler)(error, std::move(value));
              });
            };
            // std::function needs a copyable target: the job is moved in once and run once.
            auto shared = std::make_shared<decltype(job)>(std::move(job));
            pool.Push([shared] { (*shared)(); }, slot);
          },
          boost::asio::use_awaitable);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

/// The completion side of one AsyncToSync call. The completion handler owns it: when the
/// handler runs, or is destroyed without running (its event loop went away), `done` is set
/// and a waiting pool thread is woken; an unkept promise then reads as broken.
template <class R>
struct AsyncWait {
  std::promise<SyncResult<R>> promise;
  std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  SyncPool* pool = SyncPool::Current();
  ~AsyncWait() {
    done->store(true);
    if (pool != nullptr) pool->Notify();
  }
};

}  // namespace internal

/// Runs blocking `f()` on a thread of SyncPool::Default() and resumes the caller with its
/// result (or its exception) on the caller's executor. The caller's connection waits; the
/// rest of its event loop keeps running. Throws SyncPoolFull when the pool's queue is full,
/// Disconnected once the worker is stopping. A cancellation (the consumer's close timeout)
/// cannot stop `f`: the caller resumes when it returns.
/// Lifetime: `f` is moved to the pool thread; what it refers to must outlive the call (the
/// caller is suspended until it returns, so the caller's locals do).
template <class F>
auto SyncToAsync(F f) -> Task<std::invoke_result_t<F&>> {
  return internal::SyncCall(std::move(f), std::nullopt);
}

/// As SyncToAsync(f), on the thread of `slot` (thread-sensitive): code that keeps state in
/// thread-locals, or a library that needs one thread (a SQLite connection), sees one.
/// Calls of one slot run one at a time, in order; slots outnumbering the threads share them.
template <class F>
auto SyncToAsync(F f, ThreadSensitive slot) -> Task<std::invoke_result_t<F&>> {
  return internal::SyncCall(std::move(f), slot);
}

/// Runs the awaitable that `make()` returns on `executor` and blocks the calling thread
/// until it completes; returns its result or rethrows its exception. For blocking code that
/// must call the asynchronous API. On a pool thread, the wait runs the pool's other calls
/// (see SyncPool). Throws std::logic_error, before anything runs, when called on an
/// event-loop thread (it would block the loop that must run the awaitable, or another
/// loop's connections: asgiref raises RuntimeError in the same case); Disconnected when the
/// executor's loop is gone before the awaitable finished.
template <class F>
auto AsyncToSync(boost::asio::any_io_executor executor, F make) ->
    typename std::invoke_result_t<F&>::value_type {
  using R = typename std::invoke_result_t<F&>::value_type;
  if (internal::OnEventLoopThread()) internal::ThrowAsyncToSyncOnLoop();
  auto wait = std::make_shared<internal::AsyncWait<R>>();
  auto future = wait->promise.get_future();
  const std::shared_ptr<std::atomic<bool>> done = wait->done;
  SyncPool* pool = wait->pool;
  boost::asio::co_spawn(
      executor, [make = std::move(make)]() mutable -> Task<R> { co_return co_await make(); },
      [wait = std::move(wait)](std::exception_ptr error, auto... result) {
        if (error) {
          wait->promise.set_exception(error);
        } else if constexpr (sizeof...(result) == 0) {
          wait->promise.set_value(std::monostate());
        } else {
          wait->promise.set_value(std::move(result)...);
        }
      });
  if (pool != nullptr) pool->HelpUntil([&done] { return done->load(); });
  try {
    if constexpr (std::is_void_v<R>) {
      future.get();
    } else {
      return future.get();
    }
  } catch (const std::future_error&) {
    throw Disconnected("AsyncToSync: the event loop stopped before the call finished");
  }
}

/// As above, on the executor of the coroutine whose SyncToAsync call is running this code
/// (a sync consumer's handler: its connection's loop). Throws std::logic_error outside a
/// SyncToAsync call.
template <class F>
auto AsyncToSync(F make) -> typename std::invoke_result_t<F&>::value_type {
  std::optional<boost::asio::any_io_executor> executor = internal::CallerExecutor();
  if (!executor) {
    if (internal::OnEventLoopThread()) internal::ThrowAsyncToSyncOnLoop();
    throw std::logic_error(
        "AsyncToSync without an executor works only inside SyncToAsync; pass the executor "
        "to run on");
  }
  return AsyncToSync(*executor, std::move(make));
}

}  // namespace sluice
