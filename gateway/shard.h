#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "gateway/endpoint.h"

namespace sluice::gateway {

class LinkCall;

/// One event-loop thread and the client connections that live on it. Connection ids carry
/// the shard index in their top 16 bits, so the link hands a Frame's envelopes to shards
/// with one post per shard, and no lock guards the registry.
/// Thread-safety: Register/Unregister/Find on the shard's thread; Deliver/LinkLost from any.
class Shard final {
 public:
  explicit Shard(uint16_t index) : index_(index) {}

  boost::asio::io_context& io() { return io_; }
  uint16_t index() const { return index_; }
  static uint16_t IndexOf(uint64_t connection_id) {
    return static_cast<uint16_t>(connection_id >> 48);
  }

  /// A new connection id routed to `endpoint`, which the registry keeps alive until
  /// Unregister.
  uint64_t Register(std::shared_ptr<Endpoint> endpoint, LinkCall* link);
  void Unregister(uint64_t id);
  size_t size() const { return endpoints_.size(); }

  void Deliver(std::vector<v1::Envelope>&& batch);
  /// Unregisters every connection of `link` and tells each it is lost.
  void LinkLost(const LinkCall* link);

 private:
  struct Entry {
    std::shared_ptr<Endpoint> endpoint;
    const LinkCall* link;
  };

  const uint16_t index_;
  boost::asio::io_context io_{1};
  uint64_t next_ = 0;
  std::unordered_map<uint64_t, Entry> endpoints_;
};

}  // namespace sluice::gateway
