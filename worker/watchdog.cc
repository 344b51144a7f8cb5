#include "worker/watchdog.h"

#include "common/log.h"

namespace sluice::worker {
namespace {

thread_local LoopWatchdog::Watch* current_watch = nullptr;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

LoopWatchdog::LoopWatchdog(const std::vector<boost::asio::io_context*>& loops,
                           std::chrono::milliseconds threshold, Counter& stalls)
    : threshold_(threshold),
      period_(std::max(std::chrono::milliseconds(10), threshold / 4)),
      stalls_(stalls) {
  for (boost::asio::io_context* loop : loops) {
    watches_.push_back(std::make_unique<Watch>());
    timers_.push_back(std::make_unique<boost::asio::steady_timer>(*loop));
  }
}

LoopWatchdog::~LoopWatchdog() { Stop(); }

LoopWatchdog::Watch* LoopWatchdog::Current() { return current_watch; }
void LoopWatchdog::SetCurrent(Watch* watch) { current_watch = watch; }

void LoopWatchdog::Start() {
  if (threshold_.count() <= 0 || thread_.joinable()) return;
  for (unsigned i = 0; i < watches_.size(); ++i) Beat(i);
  thread_ = std::thread([this] { Check(); });
}

void LoopWatchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LoopWatchdog::Beat(unsigned loop) {
  watches_[loop]->beat_ms.store(NowMs(), std::memory_order_relaxed);
  timers_[loop]->expires_after(period_);
  timers_[loop]->async_wait([this, loop](const boost::system::error_code& ec) {
    if (!ec) Beat(loop);
  });
}

void LoopWatchdog::Check() {
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
    const int64_t now = NowMs();
    for (unsigned i = 0; i < watches_.size(); ++i) {
      Watch& watch = *watches_[i];
      const int64_t age = now - watch.beat_ms.load(std::memory_order_relaxed);
      if (age <= threshold_.count()) {
        watch.reported = false;
        continue;
      }
      if (watch.reported) continue;
      watch.reported = true;
      stalls_.Inc();
      watch.stalled.store(watch.running.load(std::memory_order_relaxed), std::memory_order_relaxed);
      SLUICE_LOG(kWarning, "worker")
          << "event loop " << i << " blocked for " << age << " ms (threshold " << threshold_.count()
          << " ms): blocking code belongs in SyncToAsync or a sync consumer; the consumer it "
             "ran last names itself when it runs again";
    }
  }
}

}  // namespace sluice::worker
