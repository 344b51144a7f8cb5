#pragma once

#include "sluice/websocket_consumer.h"

namespace sluice {

/// A WebSocket consumer that speaks JSON (Channels' AsyncJsonWebsocketConsumer): each text
/// message is parsed and handed to ReceiveJson; SendJson serialises. A text message that is
/// not JSON closes the connection with 1007 (invalid payload data), a binary message with
/// 1003 (unsupported data), with a reason saying why: the client's mistake, not a consumer
/// failure. (Channels raises instead, which the server reports as an application error.)
/// Thread-safety and lifetime: as Consumer.
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
