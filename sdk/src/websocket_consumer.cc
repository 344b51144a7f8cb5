#include "sluice/websocket_consumer.h"

#include <stdexcept>

namespace sluice {

Task<void> WebSocketConsumer::Run() {
  for (;;) {
    Event event = co_await Receive();
    if (std::holds_alternative<WebSocketConnect>(event)) {
      co_await JoinGroups();  // before accept, as Channels does
      co_await OnConnect();
    } else if (auto* resumed = std::get_if<WebSocketResume>(&event)) {
      accepted_ = true;
      co_await OnResume(std::move(resumed->state));
    } else if (auto* layer_message = std::get_if<LayerMessage>(&event)) {
      co_await Dispatch(*layer_message);
    } else if (auto* message = std::get_if<WebSocketReceive>(&event)) {
      if (message->binary) {
        co_await OnBinary(std::move(message->data));
      } else {
        co_await OnText(std::move(message->data));
      }
    } else if (auto* gone = std::get_if<WebSocketDisconnect>(&event)) {
      closed_ = true;
      co_await OnDisconnect(gone->code, std::move(gone->reason));
      co_return;
    } else {
      throw std::logic_error("unexpected event for a WebSocket: " + std::string(TypeName(event)));
    }
  }
}

Task<void> WebSocketConsumer::OnConnect() { co_await Accept(); }
Task<void> WebSocketConsumer::OnResume(std::optional<std::string> /*state*/) { co_return; }
Task<void> WebSocketConsumer::OnText(std::string /*text*/) { co_return; }
Task<void> WebSocketConsumer::OnBinary(std::string /*bytes*/) { co_return; }
Task<void> WebSocketConsumer::OnDisconnect(int /*code*/, std::string /*reason*/) { co_return; }

Task<void> WebSocketConsumer::Accept(std::string subprotocol, Headers headers) {
  // Built in a named local: GCC 12 destroys braced temporaries in a co_await twice.
  Event accept = WebSocketAccept{std::move(subprotocol), std::move(headers)};
  co_await Send(std::move(accept));
  accepted_ = true;
}

// Not coroutines: they hand back Send's awaitable, so a message costs no frame of theirs.
Task<void> WebSocketConsumer::SendText(std::string text) {
  WebSocketSend message;
  message.data = std::move(text);
  return Send(std::move(message));
}

Task<void> WebSocketConsumer::SendBinary(std::string bytes) {
  WebSocketSend message;
  message.data = std::move(bytes);
  message.binary = true;
  return Send(std::move(message));
}

Task<void> WebSocketConsumer::Close(int code, std::string reason) {
  if (closed_) co_return;
  closed_ = true;
  Event close = WebSocketClose{code, std::move(reason)};
  co_await Send(std::move(close));
}

}  // namespace sluice
