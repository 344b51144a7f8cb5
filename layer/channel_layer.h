#pragma once

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::layer {

/// A channel-layer message: a JSON object with a string `type`; bytes are
/// `Message::binary_t` (msgpack bin on the wire), text is a string (msgpack str).
using Message = nlohmann::json;
using MessagePtr = std::shared_ptr<const Message>;

/// How a layer operation ended. The link's reply codes map onto these one to one.
enum class Status : uint8_t {
  kOk,
  kChannelFull,  // the channel holds `capacity` messages, or a layer-wide bound is reached
  kTooLarge,     // the message encodes to more than kMaxMessageBytes
  kUnavailable,  // the backend cannot be reached now (Redis down or too slow)
  kInvalid,      // a bad channel or group name, or a message that is not an object with a type
  kCancelled,    // a Receive ended by CloseChannel or by the layer going away
};
std::string_view StatusName(Status status);

/// Operations complete on the handler's associated executor (bind_executor(shard.io(), …));
/// a handler without one completes on the layer's executor. Never inside the call.
using Completion = boost::asio::any_completion_handler<void(Status)>;
/// A received message, or kCancelled (with no message).
using ReceiveCompletion = boost::asio::any_completion_handler<void(Status, MessagePtr)>;

/// Seconds since the Unix epoch (what channels_redis scores queues and groups with).
using Clock = std::function<double()>;
double SystemClock();

/// Per-channel capacity by name pattern, as channels_redis `channel_capacity`: a glob
/// (fnmatch: `*`, `?`, `[…]`, `[!…]`, whole name) or a regex (matched from the start of the
/// name, as Python's `re.match`; ECMAScript syntax). The first rule that matches wins.
class CapacityRule final {
 public:
  static CapacityRule Glob(std::string_view pattern, size_t capacity);
  static CapacityRule Regex(const std::string& pattern, size_t capacity);
  bool Matches(std::string_view channel) const;
  size_t capacity() const { return capacity_; }

 private:
  CapacityRule(std::regex regex, bool whole, size_t capacity)
      : regex_(std::move(regex)), whole_(whole), capacity_(capacity) {}
  std::regex regex_;
  bool whole_;
  size_t capacity_;
};

/// What both backends are configured with; the defaults are Channels' and channels_redis'.
struct Options {
  /// The `<gateway>` of this gateway's channel names, `specific.<gateway>!<connection>`:
  /// ASCII letters, digits, `-`, `_`, `.`; unique among the gateways on one Redis.
  std::string gateway_id;
  std::string prefix = "asgi";  // Redis key prefix (channels_redis `prefix`)
  std::chrono::seconds expiry{60};
  std::chrono::seconds group_expiry{86400};
  size_t capacity = 100;
  std::vector<CapacityRule> channel_capacity;
  /// Groups one of this gateway's channels may be in through this layer.
  size_t max_groups_per_channel = 100;
  /// In memory: named (non-local) channels holding messages at once, and group memberships.
  size_t max_named_channels = 1024;
  size_t max_memberships = 1'000'000;
  Clock clock = SystemClock;
  /// Redis: told (on the layer's executor) when the layer becomes usable (true) and when it
  /// loses Redis (false), for the owner's log. Unset: losses go to stderr.
  std::function<void(bool up)> on_connection;
};

/// Counters the gateway exports as metrics. Lock-free; read from any thread.
struct Stats {
  std::atomic<uint64_t> sent{0};              // messages accepted by Send
  std::atomic<uint64_t> group_sends{0};       // GroupSend calls accepted
  std::atomic<uint64_t> received{0};          // messages handed to a Receive
  std::atomic<uint64_t> channel_full{0};      // Sends refused with kChannelFull
  std::atomic<uint64_t> group_skipped{0};     // group members skipped because full
  std::atomic<uint64_t> too_large{0};         // Sends and GroupSends refused as too large
  std::atomic<uint64_t> unavailable{0};       // operations failed with kUnavailable
  std::atomic<uint64_t> invalid{0};           // operations refused as kInvalid
  std::atomic<uint64_t> expired{0};           // messages dropped unread past the expiry
  std::atomic<uint64_t> dropped_closed{0};    // messages for a closed local channel
  std::atomic<uint64_t> dropped_overflow{0};  // Redis: a local channel's buffer was full
  std::atomic<uint64_t> decode_errors{0};     // Redis: messages that were not msgpack maps
  std::atomic<uint64_t> reconnects{0};        // Redis: connections made after the first
  std::atomic<int64_t> connected{0};          // Redis: 1 while usable (in memory: always 1)
  // Redis, on reconnect: memberships of this gateway's channels added again, and group leaves
  // that failed while Redis was away, made then.
  std::atomic<uint64_t> restored_memberships{0};
  std::atomic<uint64_t> restored_leaves{0};
};

/// A Channels channel layer, owned by the gateway.
/// - Channels of this gateway (`specific.<gateway>!<local>`) exist from NewChannel to
///   CloseChannel; their messages wait in a queue of the channel's capacity until a Receive
///   takes them. Messages for a closed or unknown local channel are dropped and counted.
/// - Other channel names are named channels (`thumbnails`): Send queues to them; Receive
///   pulls one message when asked.
/// - At most one Receive is pending per channel (a second one completes with kInvalid).
/// Thread-safety: every member may be called from any thread; the work runs on the layer's
/// executor (a single-threaded io_context), completions on the handler's executor.
/// Lifetime: destroy the layer on its executor's thread after its io_context stopped; pending
/// completions are then destroyed without being called.
class ChannelLayer {
 public:
  virtual ~ChannelLayer() = default;

  /// Creates the local channel `specific.<gateway>!<hex id>`; the caller keeps ids unique.
  /// Creating one again is harmless.
  virtual std::string NewChannel(uint64_t id) = 0;
  /// The name NewChannel(id) gives, without creating the channel (no work on the layer's
  /// loop): for a connection whose channel is created only if it is used.
  virtual std::string ChannelName(uint64_t id) const = 0;
  /// Ends a local channel: drops its queue, cancels its Receive, leaves the groups it joined
  /// through this layer. On a named channel, cancels a pending Receive only.
  virtual void CloseChannel(std::string channel) = 0;

  virtual void Send(std::string channel, Message message, Completion done) = 0;
  virtual void GroupAdd(std::string group, std::string channel, Completion done) = 0;
  virtual void GroupDiscard(std::string group, std::string channel, Completion done) = 0;
  /// Sends to every member; members that are full are skipped and counted (group_skipped).
  virtual void GroupSend(std::string group, Message message, Completion done) = 0;
  /// The next message on `channel` (a local channel of this gateway or a named one).
  virtual void Receive(std::string channel, ReceiveCompletion done) = 0;

  virtual const Stats& stats() const = 0;
};

// Channels' name rules: < 100 ASCII characters; a channel is `[A-Za-z0-9-_.]+` optionally
// followed by `!` and `[A-Za-z0-9-_.]*`; a group has no `!`.
bool ValidChannelName(std::string_view name);
bool ValidGroupName(std::string_view name);
/// The part of a channel name up to and including `!` (the whole name when it has none).
std::string_view NonLocalName(std::string_view channel);

}  // namespace sluice::layer
