#include "common/frame_queue.h"

#include <utility>

namespace sluice {

void FrameQueue::Push(v1::Envelope&& envelope) {
  // Tag and length prefix of a repeated field: at most 1 + 5 bytes for our sizes.
  const size_t size = envelope.ByteSizeLong() + 6;
  if (frames_.empty() || frames_.back().bytes + size > max_frame_bytes_) frames_.emplace_back();
  Sized& back = frames_.back();
  *back.frame.add_envelopes() = std::move(envelope);
  back.bytes += size;
  queued_bytes_ += size;
}

bool FrameQueue::Pop(v1::Frame* out) {
  if (frames_.empty()) return false;
  *out = std::move(frames_.front().frame);
  queued_bytes_ -= frames_.front().bytes;
  frames_.pop_front();
  return true;
}

}  // namespace sluice
