#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#include "sluice/event.h"

namespace sluice {

// Thread-safety and lifetime: plain values and exception types; the calls that use them are
// Consumer's (sluice/consumer.h), under its contract.

/// Channels' limit on one channel-layer message, checked on its msgpack encoding.
inline constexpr size_t kMaxLayerMessageBytes = size_t{1} << 20;

/// A channel-layer call that failed. The subclasses say why; catch LayerError for all.
class LayerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// The channel is at its capacity (default 100 messages): its reader is behind. A group send
/// never throws it: full members are skipped (and counted at the gateway).
class ChannelFull final : public LayerError {
 public:
  using LayerError::LayerError;
};
/// The message encodes to more than kMaxLayerMessageBytes.
class MessageTooLarge final : public LayerError {
 public:
  using LayerError::LayerError;
};
/// The gateway's layer cannot be reached now (Redis down or slow); try again later.
class LayerUnavailable final : public LayerError {
 public:
  using LayerError::LayerError;
};
/// The gateway refused the call: a bad channel or group name, a message it could not take,
/// or a group call from a background-channel consumer (it has no channel of its own).
class InvalidLayerCall final : public LayerError {
 public:
  using LayerError::LayerError;
};

/// One channel-layer operation as the runtime carries it to the gateway.
struct LayerCall {
  enum class Kind { kSend, kGroupAdd, kGroupDiscard, kGroupSend };
  Kind kind = Kind::kSend;
  std::string target;   // the channel (kSend) or the group
  std::string message;  // msgpack (kSend, kGroupSend)
};

/// The msgpack encoding of a message the layer will take: throws std::invalid_argument when
/// it is not an object with a string "type", MessageTooLarge past kMaxLayerMessageBytes.
std::string EncodeLayerMessage(const Message& message);

}  // namespace sluice
