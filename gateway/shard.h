#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/inbound.h"
#include "gateway/endpoint.h"

namespace sluice::gateway {

class ClientSession;

/// One event-loop thread and the client connections that live on it.
/// - The registry maps connection ids to sessions. Ids carry the shard index in their top
///   16 bits, so a link hands a Frame's envelopes to shards with one post per shard, and no
///   lock guards the registry. Each entry remembers the generation of its link, so a lost
///   link is never confused with a later one.
/// - Every client session is on the shard's session list, from accept to close (idle
///   keep-alive connections too): a drain reaches all of them, and one sweep timer checks
///   every session's deadlines (header, body, idle, slow-client, linger), so no session
///   holds a timer of its own. Deadlines are as coarse as the sweep (kSweep).
/// - One scratch buffer receives every read on the shard: a session that is waiting for
///   bytes holds no read buffer.
/// Thread-safety: Deliver/LinkLost/io from any thread; everything else on the shard thread.
class Shard final {
 public:
  static constexpr std::chrono::milliseconds kSweep{100};
  static constexpr size_t kScratchBytes = size_t{64} << 10;

  explicit Shard(uint16_t index);
  ~Shard();

  boost::asio::io_context& io() { return io_; }
  uint16_t index() const { return index_; }
  static uint16_t IndexOf(uint64_t connection_id) {
    return static_cast<uint16_t>(connection_id >> 48);
  }

  /// A new connection id routed to `endpoint`, which the registry keeps alive until
  /// Unregister, on the link of generation `link`.
  uint64_t Register(std::shared_ptr<Endpoint> endpoint, uint64_t link);
  void Unregister(uint64_t id);
  /// Connections with an instance open on a worker; readable from any thread.
  size_t registered() const { return registered_.load(std::memory_order_relaxed); }

  /// Hands each envelope of a received Frame's batch to its connection, on this thread.
  void Deliver(InboundBatch&& batch);
  /// Unregisters every connection of link generation `link` and tells each it is lost.
  void LinkLost(uint64_t link);

  // The session list (called by ClientSession's constructor and destructor).
  void Attach(ClientSession* session);
  void Detach(ClientSession* session);
  /// Sessions on the shard; readable from any thread.
  size_t sessions() const { return session_count_.load(std::memory_order_relaxed); }
  /// Calls `fn` on every session (shard thread; `fn` may close but not destroy others).
  void ForEachSession(const std::function<void(ClientSession&)>& fn);

  /// Starts the sweep; call on the shard thread or before it runs.
  void StartSweep();
  void StopSweep();
  /// One sweep as of `now` (steady-clock nanoseconds): the timer passes the clock; tests
  /// pass the time they want.
  void Sweep(int64_t now);
  /// The time of the last sweep, in steady-clock nanoseconds: what deadlines are set from.
  int64_t now() const { return now_; }
  std::span<char> scratch() { return {scratch_.get(), kScratchBytes}; }

 private:
  struct Entry {
    std::shared_ptr<Endpoint> endpoint;
    uint64_t link;
  };
  const uint16_t index_;
  // Before io_: sessions that die with io_'s pending handlers detach from a live list.
  ClientSession* head_ = nullptr;
  std::atomic<size_t> session_count_ = 0;
  std::unique_ptr<char[]> scratch_;
  int64_t now_;
  uint64_t next_ = 0;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer sweep_{io_};
  // After io_: the sessions it holds close their sockets while io_ is still there.
  std::unordered_map<uint64_t, Entry> endpoints_;
  std::atomic<size_t> registered_ = 0;  // endpoints_.size(), for other threads
};

}  // namespace sluice::gateway
