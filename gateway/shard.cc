#include "gateway/shard.h"

#include <boost/asio/post.hpp>

namespace sluice::gateway {

uint64_t Shard::Register(std::shared_ptr<Endpoint> endpoint, LinkCall* link) {
  const uint64_t id = (static_cast<uint64_t>(index_) << 48) | (++next_ & ((1ULL << 48) - 1));
  endpoints_.emplace(id, Entry{std::move(endpoint), link});
  return id;
}

void Shard::Unregister(uint64_t id) { endpoints_.erase(id); }

void Shard::Deliver(std::vector<v1::Envelope>&& batch) {
  boost::asio::post(io_, [this, batch = std::move(batch)]() mutable {
    for (v1::Envelope& envelope : batch) {
      const auto it = endpoints_.find(envelope.connection_id());
      if (it == endpoints_.end()) continue;  // the client left; the worker learns it anyway
      auto endpoint = it->second.endpoint;   // may unregister itself while handling
      endpoint->OnEnvelope(envelope);
    }
  });
}

void Shard::LinkLost(const LinkCall* link) {
  boost::asio::post(io_, [this, link] {
    std::vector<std::shared_ptr<Endpoint>> lost;
    std::erase_if(endpoints_, [&](const auto& item) {
      if (item.second.link != link) return false;
      lost.push_back(item.second.endpoint);
      return true;
    });
    for (auto& endpoint : lost) endpoint->OnLinkLost();
  });
}

}  // namespace sluice::gateway
