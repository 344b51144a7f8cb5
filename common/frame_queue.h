#pragma once

#include <cstddef>
#include <deque>

#include "sluice/v1/link.pb.h"

namespace sluice {

/// The outgoing side of a link: envelopes queued while a write is in flight, packed into
/// Frames of at most `max_frame_bytes` (an envelope larger than that gets a Frame of its
/// own). Its size is bounded by the credit of the connections that fill it, not here.
/// Not thread-safe: the link guards it with its mutex.
class FrameQueue final {
 public:
  static constexpr size_t kDefaultMaxFrameBytes = 1 << 20;

  explicit FrameQueue(size_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  void Push(v1::Envelope&& envelope);
  bool empty() const { return frames_.empty(); }
  /// Moves the oldest Frame into *out. False when nothing is queued.
  bool Pop(v1::Frame* out);

  size_t queued_bytes() const { return queued_bytes_; }
  size_t queued_frames() const { return frames_.size(); }

 private:
  struct Sized {
    v1::Frame frame;
    size_t bytes = 0;  // encoded size, near enough
  };
  size_t max_frame_bytes_;
  std::deque<Sized> frames_;
  size_t queued_bytes_ = 0;
};

}  // namespace sluice
