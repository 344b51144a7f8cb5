#include "common/link_writer.h"

namespace sluice {

bool LinkWriter::Push(std::vector<v1::Frame>&& frames, size_t bytes) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  // The estimate is spread evenly: only the total matters for the gauge, and frames were
  // already cut near the limit by the Outbox.
  const size_t each = frames.empty() ? 0 : bytes / frames.size();
  for (v1::Frame& frame : frames) queue_.push_back({std::move(frame), each});
  queued_bytes_ += each * frames.size();
  return StartLocked();
}

bool LinkWriter::Push(v1::Envelope&& envelope) {
  const size_t bytes = EstimateBytes(envelope);
  std::vector<v1::Frame> frames(1);
  frames[0].mutable_envelopes()->Add(std::move(envelope));
  return Push(std::move(frames), bytes);
}

bool LinkWriter::PushFrame(v1::Frame&& frame) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  control_.push_back(std::move(frame));
  return StartLocked();
}

bool LinkWriter::Heartbeat(std::chrono::steady_clock::duration interval) {
  absl::MutexLock lock(&mu_);
  if (closed_ || writing_ ||
      (last_write_ && std::chrono::steady_clock::now() - *last_write_ < interval)) {
    return false;
  }
  heartbeat_due_ = true;
  return StartLocked();
}

bool LinkWriter::WriteDone() {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  frame_ = v1::Frame();  // frees the payloads now (Clear would keep their memory for reuse)
  if (closed_) return false;
  return StartLocked();
}

void LinkWriter::Close() {
  std::deque<Queued> dropped;  // freed outside the lock; not frame_: a write may be in flight
  absl::MutexLock lock(&mu_);
  closed_ = true;
  control_.clear();
  dropped.swap(queue_);
  queued_bytes_ = 0;
}

bool LinkWriter::writing() const {
  absl::MutexLock lock(&mu_);
  return writing_;
}

bool LinkWriter::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

size_t LinkWriter::queued_bytes() const {
  absl::MutexLock lock(&mu_);
  return queued_bytes_;
}

bool LinkWriter::StartLocked() {
  if (writing_) return false;
  if (!control_.empty()) {
    frame_ = std::move(control_.front());
    control_.pop_front();
  } else if (!queue_.empty()) {
    // Merge what queued meanwhile into one Frame, up to the size limit.
    frame_ = std::move(queue_.front().frame);
    size_t bytes = queue_.front().bytes;
    queued_bytes_ -= bytes;
    queue_.pop_front();
    while (!queue_.empty() && bytes + queue_.front().bytes <= max_frame_bytes_) {
      bytes += queue_.front().bytes;
      queued_bytes_ -= queue_.front().bytes;
      MoveEnvelopes(queue_.front().frame, frame_);
      queue_.pop_front();
    }
  } else if (heartbeat_due_) {
    frame_ = v1::Frame();
    frame_.mutable_heartbeat();
  } else {
    return false;
  }
  heartbeat_due_ = false;
  if (stamp_) stamp_(frame_);
  if (traffic_) {
    traffic_->frames_sent.Inc();
    traffic_->envelopes_sent.Inc(static_cast<uint64_t>(frame_.envelopes_size()));
  }
  writing_ = true;
  last_write_ = std::chrono::steady_clock::now();
  return true;
}

}  // namespace sluice
