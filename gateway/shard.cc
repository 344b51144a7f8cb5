#include "gateway/shard.h"

#include <boost/asio/post.hpp>

#include "common/process.h"
#include "gateway/client_session.h"

namespace sluice::gateway {

Shard::Shard(uint16_t index)
    : index_(index), scratch_(std::make_unique<char[]>(kScratchBytes)), now_(MonotonicNanos()) {}

Shard::~Shard() = default;

uint64_t Shard::Register(std::shared_ptr<Endpoint> endpoint, uint64_t link) {
  const uint64_t id = (static_cast<uint64_t>(index_) << 48) | (++next_ & ((1ULL << 48) - 1));
  endpoints_.emplace(id, Entry{std::move(endpoint), link});
  registered_.store(endpoints_.size(), std::memory_order_relaxed);
  return id;
}

void Shard::Unregister(uint64_t id) {
  endpoints_.erase(id);
  registered_.store(endpoints_.size(), std::memory_order_relaxed);
}

void Shard::Deliver(InboundBatch&& batch) {
  boost::asio::post(io_, [this, batch = std::move(batch)]() mutable {
    for (v1::Envelope* envelope : batch.envelopes) {
      const auto it = endpoints_.find(envelope->connection_id());
      if (it == endpoints_.end()) continue;  // the client left; the worker learns it anyway
      auto endpoint = it->second.endpoint;   // may unregister itself while handling
      endpoint->OnEnvelope(*envelope);
    }
  });
}

void Shard::LinkLost(uint64_t link) {
  boost::asio::post(io_, [this, link] {
    std::vector<std::shared_ptr<Endpoint>> lost;
    std::erase_if(endpoints_, [&](const auto& item) {
      if (item.second.link != link) return false;
      lost.push_back(item.second.endpoint);
      return true;
    });
    registered_.store(endpoints_.size(), std::memory_order_relaxed);
    for (auto& endpoint : lost) endpoint->OnLinkLost();
  });
}

void Shard::Attach(ClientSession* session) {
  session->prev_ = nullptr;
  session->next_ = head_;
  if (head_) head_->prev_ = session;
  head_ = session;
  session_count_.fetch_add(1, std::memory_order_relaxed);
}

void Shard::Detach(ClientSession* session) {
  if (session->prev_) {
    session->prev_->next_ = session->next_;
  } else {
    head_ = session->next_;
  }
  if (session->next_) session->next_->prev_ = session->prev_;
  session->prev_ = session->next_ = nullptr;
  session_count_.fetch_sub(1, std::memory_order_relaxed);
}

void Shard::ForEachSession(const std::function<void(ClientSession&)>& fn) {
  for (ClientSession* session = head_; session;) {
    // Hold it: `fn` may close it, and closing may let go of its last reference. Sessions
    // created meanwhile go to the head of the list and are not visited.
    auto keep = session->shared_from_this();
    fn(*session);
    session = session->next_;
  }
}

void Shard::StartSweep() {
  sweep_.expires_after(kSweep);
  sweep_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    Sweep(MonotonicNanos());
    StartSweep();
  });
}

void Shard::StopSweep() {
  boost::asio::post(io_, [this] { sweep_.cancel(); });
}

void Shard::Sweep(int64_t now) {
  now_ = now;
  ForEachSession([now](ClientSession& session) { session.OnTick(now); });
}

}  // namespace sluice::gateway
