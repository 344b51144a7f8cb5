#pragma once

// Synchronous consumers (Channels' WebsocketConsumer and, for HTTP, a sync handler): their
// handlers are plain blocking functions. Each runs on its connection's thread of the SyncPool
// (thread-sensitive: one thread per connection, in event order; connections beyond the
// pool's threads share them, round robin), so it may block (a database call, a sleep)
// without stalling any event loop; its loop only waits for it. Sending and layer calls block
// the handler until they are done.

#include <functional>
#include <string>

#include "sluice/http_consumer.h"
#include "sluice/sync.h"
#include "sluice/websocket_consumer.h"

namespace sluice {

/// A WebSocket consumer with blocking handlers. The On* handlers and the On(type) message
/// handlers run one at a time, in event order, on the connection's pool thread; the helpers
/// (Accept, SendText, GroupSend, ...) may be called only from them.
/// Thread-safety: as Consumer; the handlers' thread is not the event loop's.
class SyncWebSocketConsumer : public Consumer {
 public:
  using SyncMessageHandler = std::function<void(const Message&)>;

  SyncWebSocketConsumer();
  Task<void> Run() final;

 protected:
  /// Default: Accept().
  virtual void OnConnect();
  /// As WebSocketConsumer::OnResume.
  virtual void OnResume(std::optional<std::string> state);
  virtual void OnText(std::string text);
  virtual void OnBinary(std::string bytes);
  virtual void OnDisconnect(int code, std::string reason);

  void Accept(std::string subprotocol = {}, Headers headers = {});
  void SendText(std::string text);
  void SendBinary(std::string bytes);
  /// Before accept, denies the handshake (403); after, closes with code and reason.
  void Close(int code = 1000, std::string reason = {});

  void GroupAdd(std::string group);
  void GroupDiscard(std::string group);
  void GroupSend(std::string group, const Message& message);
  void ChannelSend(std::string channel, const Message& message);
  /// As Consumer::SaveState (docs/failover.md), from a handler.
  void SaveState(std::string state);
  /// The blocking handler for layer messages of `type`.
  void On(std::string type, SyncMessageHandler handler);

  /// This connection's pool thread, for SyncToAsync calls of one's own.
  ThreadSensitive thread_sensitive() const { return slot_; }
  bool accepted() const { return accepted_; }

 private:
  /// Runs `handler` on the connection's thread; an exception it throws ends the consumer.
  Task<void> OnThread(std::function<void()> handler);
  void Post(Event event);

  ThreadSensitive slot_;
  bool accepted_ = false;
  bool closed_ = false;
};

/// An HTTP consumer with a blocking handler: the request body is read whole first (in memory
/// up to spool_threshold, in a temporary file past it; 413-worthy bodies over max_body throw
/// std::length_error, answered 500 by the runtime unless caught), then HandleRequest runs on the
/// connection's pool thread. It answers with Respond, or streams with StartResponse and
/// SendBody (long-poll, Server-Sent Events): each blocks until the gateway took it.
/// Thread-safety: as Consumer.
class SyncHttpConsumer : public HttpConsumer {
 public:
  explicit SyncHttpConsumer(size_t max_body = 64 << 20, size_t spool_threshold = 1 << 20);

 protected:
  virtual void HandleRequest(RequestBody body) = 0;

  void Respond(int status, std::string body, Headers headers = {},
               std::string_view content_type = "text/plain; charset=utf-8");
  void StartResponse(int status, Headers headers);
  void SendBody(std::string chunk, bool more);

  void GroupSend(std::string group, const Message& message);
  void ChannelSend(std::string channel, const Message& message);
  ThreadSensitive thread_sensitive() const { return slot_; }

 private:
  Task<void> Handle() final;

  ThreadSensitive slot_;
  size_t max_body_;
  size_t spool_threshold_;
};

}  // namespace sluice
