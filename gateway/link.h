#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// A link to one worker, as client sessions use it. Implemented by LinkCall (a gRPC stream)
/// and by fakes in tests. Thread-safety: Send from the shard thread named in the call;
/// the rest from any thread.
class Link {
 public:
  virtual ~Link() = default;
  /// Queues an envelope from shard `shard`'s thread; it leaves with that shard's next batch.
  /// False when the link has ended (the session's OnLinkLost follows).
  virtual bool Send(uint16_t shard, v1::Envelope&& envelope) = 0;
  /// The worker's receive window: each connection's initial credit towards the worker.
  virtual const v1::Window& worker_window() const = 0;
  /// Unique for the gateway's lifetime (never reused, unlike an address), so a lost link is
  /// never confused with a later one.
  virtual uint64_t generation() const = 0;
};

/// Admission: picks the worker for a new connection. WorkerPool in production.
/// Thread-safety: any thread.
class LinkPicker {
 public:
  virtual ~LinkPicker() = default;
  /// A ready link with room, its slot reserved; null when no worker has room (answer 503).
  virtual std::shared_ptr<Link> Pick() = 0;
  /// As Pick, among the workers that consume the named channel `channel` (their Welcome
  /// listed it).
  virtual std::shared_ptr<Link> PickFor(std::string_view channel) = 0;
  /// The named channels some ready, non-draining worker consumes.
  virtual std::vector<std::string> Channels() = 0;
};

}  // namespace sluice::gateway
