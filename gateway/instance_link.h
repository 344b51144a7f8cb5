#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/credit.h"
#include "gateway/link.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// The gateway's end of one application instance on a worker: its connection id, the link
/// it lives on, and the credit both ways. A session owns one per instance (one per HTTP
/// request, one per WebSocket). Thread-safety: the session's shard thread only.
class InstanceLink final {
 public:
  InstanceLink(uint64_t id, uint16_t shard, std::shared_ptr<Link> link,
               const v1::Window& receive_window);

  uint64_t id() const { return id_; }
  const Link& link() const { return *link_; }

  /// Sends the Open with the first events (a complete request travels as one envelope).
  /// False when the link is ending (the session's OnLinkLost follows).
  /// `channel_name` is the instance's channel-layer channel, if it has one.
  bool Open(v1::Scope&& scope, v1::Event* first = nullptr, std::string channel_name = {});
  /// Sends an event, spending credit when it needs any; the caller checked CanSend().
  /// `seq`: its number (WebSocket events that spend credit), or 0.
  void Send(v1::Event&& event, uint64_t seq = 0);
  bool CanSend() const { return credit_.CanSend(); }
  /// Answers a layer operation of the instance (spends no credit).
  void SendLayerResult(uint64_t op_id, v1::LayerResult::Status status);
  void OnCredit(const v1::Window& grant) { credit_.Grant(grant); }

  /// An event arrived from the worker. False when it overran the credit it was granted.
  [[nodiscard]] bool OnReceived(const v1::Event& event);
  /// The worker has spent all its credit: the client-bound queue is full.
  bool worker_blocked() const { return window_.peer_blocked(); }
  /// `bytes` of the worker's payload reached the client. Grants credit back when due;
  /// true when it did (the worker is no longer blocked).
  bool Consumed(size_t bytes);

 private:
  const uint64_t id_;
  const uint16_t shard_;
  const std::shared_ptr<Link> link_;
  SendCredit credit_;     // towards the worker
  ReceiveWindow window_;  // from the worker
};

}  // namespace sluice::gateway
