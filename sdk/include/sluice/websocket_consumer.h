#pragma once

#include <string>
#include <string_view>

#include "sluice/consumer.h"

namespace sluice {

/// A WebSocket consumer (Channels' AsyncWebsocketConsumer). Override the On* handlers; the
/// base runs the receive loop, calling them one at a time in order. OnConnect's default
/// accepts; a consumer that closes in OnConnect denies the handshake (403).
/// When the connection moves from another worker (docs/failover.md), OnResume is called
/// instead of OnConnect, with the state saved last (SaveState); the groups are kept, and the
/// events the previous instance had not finished follow.
/// Thread-safety and lifetime: as Consumer.
class WebSocketConsumer : public Consumer {
 public:
  Task<void> Run() final;

 protected:
  virtual Task<void> OnConnect();
  /// The connection moved here, accepted already. `state`: SaveState's last, if any.
  virtual Task<void> OnResume(std::optional<std::string> state);
  virtual Task<void> OnText(std::string text);
  virtual Task<void> OnBinary(std::string bytes);
  /// The client went away or the connection closed; code 1005 when it gave none.
  virtual Task<void> OnDisconnect(int code, std::string reason);

  /// Accepts the handshake. `subprotocol` must be one the client offered, or empty.
  Task<void> Accept(std::string subprotocol = {}, Headers headers = {});
  Task<void> SendText(std::string text);
  Task<void> SendBinary(std::string bytes);
  /// Before accept, denies the handshake (403); after, closes with code and reason.
  Task<void> Close(int code = 1000, std::string reason = {});

  bool accepted() const { return accepted_; }

 private:
  bool accepted_ = false;
  bool closed_ = false;
};

}  // namespace sluice
