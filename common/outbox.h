#pragma once

#include <cstddef>
#include <vector>

#include "sluice/v1/link.pb.h"

namespace sluice {

/// Estimated encoded size of an envelope: its payloads plus a fixed allowance per part. Used
/// to cut Frames near kMaxFrameBytes and for the queued-bytes gauges; cheaper than
/// ByteSizeLong, which serialization computes again anyway.
size_t EstimateBytes(const v1::Envelope& envelope);

/// The envelopes one executor (a gateway shard, a worker loop) has for one link during one
/// turn of its loop. Envelopes of the same connection added one after another are merged
/// into one (a response's start, body and close travel together), and Frames are cut at
/// about kMaxFrameBytes. The owner hands Take()'s Frames to the link's LinkWriter once per
/// turn, so the writer's lock is taken once per batch, not once per event.
/// Thread-safety: none; one executor owns it.
class Outbox final {
 public:
  static constexpr size_t kMaxFrameBytes = 1 << 20;

  explicit Outbox(size_t max_frame_bytes = kMaxFrameBytes) : max_frame_bytes_(max_frame_bytes) {}

  /// Adds an envelope. True when the outbox was empty: the owner schedules a flush.
  bool Add(v1::Envelope&& envelope);
  bool empty() const { return frames_.empty(); }
  /// Takes the gathered Frames, in order, and their estimated size.
  std::vector<v1::Frame> Take(size_t* bytes);

 private:
  size_t max_frame_bytes_;
  std::vector<v1::Frame> frames_;
  size_t last_bytes_ = 0;  // of frames_.back()
  size_t total_bytes_ = 0;
};

/// Moves the envelopes of `from` to the end of `to`, without copying them.
void MoveEnvelopes(v1::Frame& from, v1::Frame& to);

}  // namespace sluice
