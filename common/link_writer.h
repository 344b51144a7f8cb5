#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "common/outbox.h"
#include "sluice/v1/link.pb.h"

namespace sluice {

/// The write side of a link stream, shared by both ends. Executors hand it the Frames their
/// Outbox gathered (one lock per batch); exactly one gRPC write is in flight, and whatever
/// queued meanwhile goes out merged into the next Frame (up to about Outbox::kMaxFrameBytes):
/// under load one write carries many events, when idle there is no delay.
/// Every method that returns true has started a write: the caller must then call
/// reactor->StartWrite(frame()) (outside any lock of its own) and WriteDone() from
/// OnWriteDone. Thread-safe.
class LinkWriter final {
 public:
  /// Called on every Frame just before it is written (the worker stamps its load into it).
  /// Must not call back into the writer.
  using Stamp = std::function<void(v1::Frame&)>;

  /// `traffic` (optional) counts the Frames and envelopes written.
  explicit LinkWriter(Stamp stamp = nullptr, LinkTraffic* traffic = nullptr,
                      size_t max_frame_bytes = Outbox::kMaxFrameBytes)
      : stamp_(std::move(stamp)), traffic_(traffic), max_frame_bytes_(max_frame_bytes) {}

  /// Queues an Outbox's Frames (`bytes`: their estimated size).
  [[nodiscard]] bool Push(std::vector<v1::Frame>&& frames, size_t bytes);
  /// One envelope, for callers outside an executor's turn (tests, rare control traffic).
  [[nodiscard]] bool Push(v1::Envelope&& envelope);
  /// A Frame of its own (hello, welcome) written before anything queued later.
  [[nodiscard]] bool PushFrame(v1::Frame&& frame);
  /// A heartbeat Frame, unless the link wrote something in the last `interval`.
  [[nodiscard]] bool Heartbeat(std::chrono::steady_clock::duration interval);
  /// The write of frame() completed successfully.
  [[nodiscard]] bool WriteDone();
  /// No more writes: the stream is ending. Queued envelopes are dropped.
  void Close();

  /// The Frame being written; valid between a true return and WriteDone().
  const v1::Frame* frame() const { return &frame_; }
  bool writing() const;
  bool closed() const;
  size_t queued_bytes() const;

 private:
  struct Queued {
    v1::Frame frame;
    size_t bytes;
  };
  bool StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Stamp stamp_;
  LinkTraffic* const traffic_;
  const size_t max_frame_bytes_;
  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::Frame> control_ ABSL_GUARDED_BY(mu_);
  bool heartbeat_due_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::chrono::steady_clock::time_point> last_write_ ABSL_GUARDED_BY(mu_);
  v1::Frame frame_;  // owned by the write in flight
};

}  // namespace sluice
