#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "layer/layer_base.h"
#include "layer/redis_connection.h"

namespace sluice::layer {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  /// A reply slower than this drops the connection (operations fail with kUnavailable) and
  /// it is made again.
  std::chrono::milliseconds reply_timeout{2000};
  /// Reconnect attempts back off from min, doubling, to max, each wait jittered down to half
  /// its value: Redis that is back is used again at most backoff_max (plus a connect) later.
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{1000};
  /// Commands awaiting a reply on the command connection; past it, kUnavailable.
  size_t max_pending = 10'000;
  /// How long one BZPOPMIN blocks (it is re-issued at once).
  std::chrono::seconds block_timeout{5};
  /// Messages taken from this gateway's queue per ZPOPMIN once one arrived.
  size_t pop_batch = 64;
  /// Group leaves (a closed channel's groups, a GroupDiscard) that could not be sent because
  /// Redis was away, kept to be sent on reconnect; past this many they are not kept (the
  /// member then stays until the group expiry, unless Redis restarted empty).
  size_t max_late_leaves = 100'000;
};

/// `redis://HOST[:PORT][/DB]`; nothing when it is not one.
std::optional<RedisOptions> ParseRedisUrl(std::string_view url);

/// The layer on Redis, for several gateways, wire-compatible with channels_redis 4.x
/// `RedisChannelLayer` (one host, no encryption): the same keys, scores, msgpack bodies and
/// expiry, so Django processes and sluice gateways share channels and groups.
/// - Keys: a channel's queue is the sorted set `<prefix><non-local name>` (this gateway's
///   channels share `<prefix>specific.<gateway>!`), scored by send time, members are 12 random
///   bytes + msgpack; a group is the sorted set `<prefix>:group:<name>` of channel names
///   scored by join time.
/// - Send is one script (expire, capacity check, ZADD, EXPIRE). GroupSend is two round trips:
///   the members, then one script that adds one message per destination key (a gateway's
///   members share one, listed in `__asgi_channel__`) and returns the keys that were full.
/// - Two connections: commands, and one that blocks in BZPOPMIN on this gateway's key and on
///   the named channels with a pending Receive (a new one unblocks it, CLIENT UNBLOCK).
///   Messages popped for this gateway wait in their channel's queue (capacity; when full the
///   oldest is dropped and counted, as channels_redis does).
/// - Redis down or slow: operations fail at once with kUnavailable (counted), Receives stay
///   pending, and the layer reconnects with jittered exponential backoff (at most
///   `backoff_max` apart), then makes the group leaves it could not make meanwhile, joins its
///   channels' groups again with a fresh join time (Redis may have restarted empty; counted
///   in `restored_*`), and resumes its pending Receives.
/// Thread-safety and lifetime: as ChannelLayer. Connecting starts at construction.
class RedisLayer final : public LayerBase {
 public:
  RedisLayer(const Executor& executor, Options options, RedisOptions redis);
  ~RedisLayer() override;

  void Send(std::string channel, Message message, Completion done) override;
  void GroupAdd(std::string group, std::string channel, Completion done) override;
  void GroupDiscard(std::string group, std::string channel, Completion done) override;
  void GroupSend(std::string group, Message message, Completion done) override;

 private:
  struct Waiter {
    ReceiveCompletion done;
    bool polling = false;  // a ZPOPMIN for it is on the command connection
  };

  void ReceiveNamed(std::string channel, ReceiveCompletion done) override;
  void CancelNamed(const std::string& channel) override;
  void LeaveGroups(const std::string& channel, std::vector<std::string> groups) override;

  void Connect();
  void OnState(uint64_t generation, bool up);
  void Ready();
  void Restore();
  void Lost();
  /// Remembers a leave to make once Redis is back (bounded by max_late_leaves).
  void LeaveLater(const std::string& group, const std::string& channel);
  bool Available() const { return available_; }
  /// Sends on the command connection; false (nothing sent) when unavailable or too busy.
  bool Call(std::span<const std::string_view> args, RedisConnection::ReplyHandler on_reply);
  void Fire(std::span<const std::string_view> args);  // reply ignored

  void Poll(const std::string& channel);
  void Pop();
  void Drain();
  void Popped(std::string_view key, std::string_view member, std::string_view score);
  void PutBack(std::string_view key, std::string_view member, std::string_view score);
  void Unblock();

  std::string Member(const Message& message);
  std::string Score();
  std::string GroupKey(std::string_view group) const {
    return options_.prefix + ":group:" + std::string(group);
  }
  std::string ChannelKey(std::string_view channel) const {
    return options_.prefix + std::string(NonLocalName(channel));
  }

  RedisOptions redis_;
  std::string local_key_;  // <prefix>specific.<gateway>!
  RedisConnection command_;
  RedisConnection blocking_;
  boost::asio::steady_timer retry_;
  std::chrono::milliseconds backoff_;
  uint64_t generation_ = 0;
  int up_ = 0;  // connections up in this generation
  bool available_ = false;
  bool ever_available_ = false;
  std::string blocking_id_;  // CLIENT ID of the blocking connection
  bool blocked_ = false;     // a BZPOPMIN is pending
  std::vector<std::string> blocked_keys_;
  std::unordered_map<std::string, Waiter> waiters_;  // named channel → its Receive
  // group → channels that left it while Redis was away; made on reconnect.
  std::unordered_map<std::string, std::vector<std::string>> late_leaves_;
  size_t late_leave_count_ = 0;
  std::mt19937_64 random_;
  int64_t last_score_us_ = 0;
};

}  // namespace sluice::layer
