#include "sluice/sync_consumer.h"

#include <stdexcept>

namespace sluice {

// ---- SyncWebSocketConsumer ----

SyncWebSocketConsumer::SyncWebSocketConsumer() : slot_(SyncPool::Default().NextSlot()) {}

Task<void> SyncWebSocketConsumer::OnThread(std::function<void()> handler) {
  return SyncToAsync(std::move(handler), slot_);
}

Task<void> SyncWebSocketConsumer::Run() {
  for (;;) {
    Event event = co_await Receive();
    if (std::holds_alternative<WebSocketConnect>(event)) {
      co_await JoinGroups();  // before accept, as Channels does
      co_await OnThread([this] { OnConnect(); });
    } else if (auto* resumed = std::get_if<WebSocketResume>(&event)) {
      accepted_ = true;
      co_await OnThread([this, resumed] { OnResume(std::move(resumed->state)); });
    } else if (auto* layer_message = std::get_if<LayerMessage>(&event)) {
      co_await Dispatch(*layer_message);
    } else if (auto* message = std::get_if<WebSocketReceive>(&event)) {
      if (message->binary) {
        co_await OnThread([this, message] { OnBinary(std::move(message->data)); });
      } else {
        co_await OnThread([this, message] { OnText(std::move(message->data)); });
      }
    } else if (auto* gone = std::get_if<WebSocketDisconnect>(&event)) {
      closed_ = true;
      co_await OnThread([this, gone] { OnDisconnect(gone->code, std::move(gone->reason)); });
      co_return;
    } else {
      throw std::logic_error("unexpected event for a WebSocket: " + std::string(TypeName(event)));
    }
  }
}

// The defaults ignore what overrides take by value (and own).
// NOLINTBEGIN(performance-unnecessary-value-param)
void SyncWebSocketConsumer::OnConnect() { Accept(); }
void SyncWebSocketConsumer::OnResume(std::optional<std::string> /*state*/) {}
void SyncWebSocketConsumer::OnText(std::string /*text*/) {}
void SyncWebSocketConsumer::OnBinary(std::string /*bytes*/) {}
void SyncWebSocketConsumer::OnDisconnect(int /*code*/, std::string /*reason*/) {}
// NOLINTEND(performance-unnecessary-value-param)

void SyncWebSocketConsumer::Post(Event event) {
  AsyncToSync([this, &event] { return Send(std::move(event)); });
}

void SyncWebSocketConsumer::Accept(std::string subprotocol, Headers headers) {
  Post(WebSocketAccept{std::move(subprotocol), std::move(headers)});
  accepted_ = true;
}

void SyncWebSocketConsumer::SaveState(std::string state) {
  AsyncToSync([this, &state]() -> Task<void> {
    Consumer::SaveState(std::move(state));
    co_return;
  });
}

void SyncWebSocketConsumer::SendText(std::string text) {
  WebSocketSend message;
  message.data = std::move(text);
  Post(std::move(message));
}

void SyncWebSocketConsumer::SendBinary(std::string bytes) {
  WebSocketSend message;
  message.data = std::move(bytes);
  message.binary = true;
  Post(std::move(message));
}

void SyncWebSocketConsumer::Close(int code, std::string reason) {
  if (closed_) return;
  closed_ = true;
  Post(WebSocketClose{code, std::move(reason)});
}

void SyncWebSocketConsumer::GroupAdd(std::string group) {
  AsyncToSync([&] { return Consumer::GroupAdd(std::move(group)); });
}

void SyncWebSocketConsumer::GroupDiscard(std::string group) {
  AsyncToSync([&] { return Consumer::GroupDiscard(std::move(group)); });
}

void SyncWebSocketConsumer::GroupSend(std::string group, const Message& message) {
  AsyncToSync([&] { return Consumer::GroupSend(std::move(group), message); });
}

void SyncWebSocketConsumer::ChannelSend(std::string channel, const Message& message) {
  AsyncToSync([&] { return Consumer::ChannelSend(std::move(channel), message); });
}

void SyncWebSocketConsumer::On(std::string type, SyncMessageHandler handler) {
  Consumer::On(std::move(type), [this, handler = std::move(handler)](const Message& message) {
    return OnThread([&handler, &message] { handler(message); });
  });
}

// ---- SyncHttpConsumer ----

SyncHttpConsumer::SyncHttpConsumer(size_t max_body, size_t spool_threshold)
    : slot_(SyncPool::Default().NextSlot()),
      max_body_(max_body),
      spool_threshold_(spool_threshold) {}

Task<void> SyncHttpConsumer::Handle() {
  RequestBody body = co_await ReadWholeBody(max_body_, spool_threshold_);
  co_await SyncToAsync([this, &body] { HandleRequest(std::move(body)); }, slot_);
}

void SyncHttpConsumer::Respond(int status, std::string body, Headers headers,
                               std::string_view content_type) {
  AsyncToSync([&] {
    return HttpConsumer::Respond(status, std::move(body), std::move(headers), content_type);
  });
}

void SyncHttpConsumer::StartResponse(int status, Headers headers) {
  AsyncToSync([&] { return HttpConsumer::StartResponse(status, std::move(headers)); });
}

void SyncHttpConsumer::SendBody(std::string chunk, bool more) {
  AsyncToSync([&] { return HttpConsumer::SendBody(std::move(chunk), more); });
}

void SyncHttpConsumer::GroupSend(std::string group, const Message& message) {
  AsyncToSync([&] { return Consumer::GroupSend(std::move(group), message); });
}

void SyncHttpConsumer::ChannelSend(std::string channel, const Message& message) {
  AsyncToSync([&] { return Consumer::ChannelSend(std::move(channel), message); });
}

}  // namespace sluice
