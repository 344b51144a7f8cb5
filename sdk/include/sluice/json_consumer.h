#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "sluice/websocket_consumer.h"

namespace sluice {

/// The deepest nesting of arrays and objects ParseJson accepts. Copying, comparing and
/// serialising a JSON value recurse once per level, so a 1 MiB message of `[[[[…` would
/// overflow a thread's stack: depth is checked before anything is built.
inline constexpr size_t kMaxJsonDepth = 128;

/// Parses `text` as JSON; nullopt when it is not JSON or nests deeper than `max_depth`.
std::optional<Message> ParseJson(std::string_view text, size_t max_depth = kMaxJsonDepth);

/// A WebSocket consumer that speaks JSON (Channels' AsyncJsonWebsocketConsumer): each text
/// message is parsed and handed to ReceiveJson; SendJson serialises. A text message that is
/// not JSON, or nests deeper than kMaxJsonDepth, closes the connection with 1007 (invalid
/// payload data), a binary message with 1003 (unsupported data), with a reason saying why: the
/// client's mistake, not a consumer failure. (Channels raises instead, which the server reports as
/// an application error.) Thread-safety and lifetime: as Consumer.
class JsonWebSocketConsumer : public WebSocketConsumer {
 protected:
  virtual Task<void> ReceiveJson(Message content);
  Task<void> SendJson(const Message& content);
  /// Fenced off, as Consumer::GroupSend's braced-list form: build the Message in a local.
  Task<void> SendJson(Message::initializer_list_t content) = delete;

 private:
  Task<void> OnText(std::string text) final;
  Task<void> OnBinary(std::string bytes) final;
};

}  // namespace sluice
