#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"

namespace sluice::worker {

/// Finds event loops that a consumer blocks: code that should have gone through SyncToAsync.
/// Each loop stamps a heartbeat every threshold/4; a thread of the watchdog's own checks the
/// stamps. A loop whose stamp is older than the threshold is reported once per stall: a
/// warning naming the loop and the connection it was running, and
/// `sluice_worker_loop_stalls_total`. The instance the loop resumed last names itself (path,
/// connection, request id) when it next runs (Instance::NoteRunning), since only the loop
/// may read its state. Best effort: a consumer resumed by something else than its instance
/// (its own timer, a SyncToAsync result) is not seen, and the last one seen is named.
/// Thread-safety: Start/Stop from one thread; Current() and the Watch fields from any.
/// Lifetime: the loops must outlive it.
class LoopWatchdog {
 public:
  struct Watch {
    std::atomic<int64_t> beat_ms{0};    // the loop's last heartbeat (steady clock)
    std::atomic<uintptr_t> running{0};  // the instance it resumed last (its address)
    std::atomic<uintptr_t> stalled{0};  // that instance when a stall was seen, to be named
    bool reported = false;              // the watchdog thread's own
  };

  LoopWatchdog(const std::vector<boost::asio::io_context*>& loops,
               std::chrono::milliseconds threshold, Counter& stalls);
  ~LoopWatchdog();

  /// Arms the heartbeats (they run once the loops run) and starts the checking thread.
  void Start();
  void Stop();
  Watch& watch(unsigned loop) { return *watches_[loop]; }
  std::chrono::milliseconds threshold() const { return threshold_; }

  /// The calling loop thread's watch (set by the loop thread at its start), or null.
  static Watch* Current();
  static void SetCurrent(Watch* watch);

 private:
  void Beat(unsigned loop);
  void Check();

  std::chrono::milliseconds threshold_;
  std::chrono::milliseconds period_;
  Counter& stalls_;
  std::vector<std::unique_ptr<Watch>> watches_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> timers_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::worker
