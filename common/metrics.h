#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace sluice {

/// A monotonically increasing count. Lock-free; safe from any thread.
class Counter final {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down. Lock-free; safe from any thread.
class Gauge final {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void Sub(int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void Set(int64_t n) { value_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

/// One owner's share of a gauge (an open socket: 1; a queue: its bytes). What the owner
/// still holds is taken back when it goes, so a gauge never drifts. Moves with its owner's
/// resource. Thread-safety: as the owner.
class GaugeShare final {
 public:
  explicit GaugeShare(Gauge& gauge, int64_t initial = 0) : gauge_(&gauge) { Add(initial); }
  GaugeShare(GaugeShare&& other) noexcept
      : gauge_(std::exchange(other.gauge_, nullptr)), held_(std::exchange(other.held_, 0)) {}
  GaugeShare& operator=(GaugeShare&&) = delete;
  ~GaugeShare() {
    if (gauge_) gauge_->Sub(held_);
  }

  void Add(int64_t n) {
    held_ += n;
    gauge_->Add(n);
  }
  void Sub(int64_t n) { Add(-n); }
  int64_t held() const { return held_; }

 private:
  Gauge* gauge_;
  int64_t held_ = 0;
};

/// A process's metrics, rendered in the Prometheus text format (version 0.0.4). Metrics are
/// registered at start-up and live as long as the registry; a name may be registered several
/// times with different labels (`reason="body_too_large"`), the help text is taken from the
/// first. Thread-safety: registration and Render are guarded; updates are lock-free.
class MetricsRegistry final {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help,
                      const std::string& labels = "");
  Gauge& AddGauge(const std::string& name, const std::string& help, const std::string& labels = "");
  /// A gauge read when rendered (e.g. the bytes queued on all links).
  void AddGaugeFunction(const std::string& name, const std::string& help,
                        std::function<int64_t()> read, const std::string& labels = "");
  /// A counter kept elsewhere (e.g. the channel layer's Stats), read when rendered.
  void AddCounterFunction(const std::string& name, const std::string& help,
                          std::function<uint64_t()> read, const std::string& labels = "");

  std::string Render() const;

 private:
  struct Entry {
    std::string name;
    std::string help;
    std::string labels;
    bool counter = false;
    Counter counter_value;
    Gauge gauge_value;
    std::function<int64_t()> read;
    std::function<uint64_t()> read_counter;
  };
  Entry& Add(const std::string& name, const std::string& help, const std::string& labels,
             bool counter);

  mutable absl::Mutex mu_;
  std::deque<Entry> entries_ ABSL_GUARDED_BY(mu_);  // a deque: references stay valid
};

/// What a process's links carried, each way: Frames (one gRPC message each) and the
/// envelopes in them. Envelopes per Frame is how much the link batches.
struct LinkTraffic {
  /// Registers `<prefix>_link_frames_total` and `<prefix>_link_envelopes_total`, labelled
  /// direction="sent" and "received".
  LinkTraffic(MetricsRegistry& registry, const std::string& prefix);

  Counter& frames_sent;
  Counter& envelopes_sent;
  Counter& frames_received;
  Counter& envelopes_received;
};

}  // namespace sluice
