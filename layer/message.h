#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "layer/channel_layer.h"

namespace sluice::layer {

/// Channels' limit on one message, checked on its msgpack encoding.
constexpr size_t kMaxMessageBytes = size_t{1} << 20;
/// The key channels_redis adds to a message for a process-local channel: the full channel
/// name (a send) or a list of them (a group send reaching several channels behind one key).
constexpr std::string_view kChannelField = "__asgi_channel__";
/// channels_redis puts this many random bytes before each msgpack body, so equal messages
/// stay distinct members of a queue's sorted set.
constexpr size_t kRandomPrefixBytes = 12;

/// Checks what a sender hands the layer: an object with a string `type`, without
/// kChannelField, nested at most 64 deep (else kInvalid), whose encoding is at most
/// kMaxMessageBytes (kTooLarge). On kOk, `encoded` (when given) holds the msgpack encoding.
Status CheckMessage(const Message& message, std::string* encoded = nullptr);

/// msgpack as channels_redis writes it (Python `msgpack.packb(m, use_bin_type=True)`):
/// strings are str, binary_t is bin, integers and floats take the smallest exact form.
std::string EncodeMsgpack(const Message& message);
/// A msgpack map, or nothing when the bytes are not one (or have non-string keys, or nest
/// deeper than 64: the decoder recurses).
std::optional<Message> DecodeMsgpack(std::string_view bytes);

}  // namespace sluice::layer
