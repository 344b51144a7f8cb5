#include "common/link_writer.h"

namespace sluice {

bool LinkWriter::Push(v1::Envelope&& envelope) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  queue_.Push(std::move(envelope));
  return StartLocked();
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
  if (closed_) return false;
  return StartLocked();
}

void LinkWriter::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  control_.clear();
  v1::Frame dropped;  // not frame_: a write of it may still be in flight
  while (queue_.Pop(&dropped)) {
  }
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
  return queue_.queued_bytes();
}

bool LinkWriter::StartLocked() {
  if (writing_) return false;
  if (!control_.empty()) {
    frame_ = std::move(control_.front());
    control_.pop_front();
  } else if (!queue_.Pop(&frame_)) {
    if (!heartbeat_due_) return false;
    frame_.Clear();
    frame_.mutable_heartbeat();
  }
  heartbeat_due_ = false;
  if (stamp_) stamp_(frame_);
  writing_ = true;
  last_write_ = std::chrono::steady_clock::now();
  return true;
}

}  // namespace sluice
