#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/event.h"
#include "sluice/layer.h"

namespace sluice {

/// Every asynchronous SDK call is a Boost.Asio C++20 coroutine.
template <class T = void>
using Task = boost::asio::awaitable<T>;

/// Thrown by Connection::Send (and the helpers built on it) when the client has gone or the
/// connection was closed. A consumer may let it propagate: the runtime ends the instance
/// quietly.
class Disconnected final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Largest state SaveState takes, in bytes: the gateway holds it for the connection's life.
inline constexpr size_t kMaxStateBytes = size_t{16} * 1024;

/// Thrown by Receive() (and Send and layer calls after it) in a WebSocket's instance when its
/// worker is draining and hands the connection to another worker: the consumer had finished
/// its last event. Let it propagate: the instance ends without OnDisconnect (the client is
/// still connected, its groups stay), and its successor resumes (docs/failover.md).
class HandedOver final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a consumer instance talks to: the runtime's end of one client connection.
/// Thread-safety: call only from the instance's own coroutines (the runtime runs them all on
/// one strand). Lifetime: outlives the Consumer bound to it.
class Connection {
 public:
  virtual ~Connection() = default;
  /// The next event from the client, in order. Waits until one arrives.
  virtual Task<Event> Receive() = 0;
  /// Sends an event to the client. Suspends while the client is slow (no credit); throws
  /// Disconnected once the client is gone, std::logic_error when the event is not valid in
  /// the connection's state (e.g. a body before http.response.start).
  virtual Task<void> Send(Event event) = 0;

  /// As Receive, but gives up at `deadline` (nullopt then).
  virtual Task<std::optional<Event>> ReceiveUntil(
      std::chrono::steady_clock::time_point deadline) = 0;
  /// The connection's channel-layer channel (`specific.<gateway>!<id>`; for a
  /// background-channel consumer, the named channel); empty when the gateway has no layer.
  virtual const std::string& ChannelName() const = 0;
  /// Runs a channel-layer operation at the gateway and waits for its answer. Throws a
  /// LayerError, or Disconnected once the client is gone (a GroupDiscard then returns: the
  /// gateway has left the connection's groups already).
  virtual Task<void> Layer(LayerCall call) = 0;
  /// A layer message for which the consumer has no handler: logged and counted.
  virtual void Unhandled(const LayerMessage& message) = 0;
  /// Saves `state` for the connection (WebSocket only; at most kMaxStateBytes): if it moves
  /// to another worker, the next instance gets it with websocket.resume. Replaces the state
  /// saved before, and acknowledges the event being handled: it is never replayed.
  /// Throws std::length_error past the limit, std::logic_error for other connections.
  virtual void SaveState(std::string state) = 0;
};

/// An ASGI application instance: one per client connection (one per HTTP request). The
/// runtime constructs it, binds it to its Connection, awaits Run(), then destroys it.
/// Subclass WebSocketConsumer or HttpConsumer unless you want raw ASGI events.
/// Channel layer (Channels' `self.channel_layer`): every consumer has a channel,
/// channel_name(), and may join groups and send to channels and groups; each call waits for
/// the gateway's answer and throws ChannelFull, MessageTooLarge, LayerUnavailable or
/// InvalidLayerCall. Messages that arrive on its channel call the handler registered with
/// On() for their "type", in order with the connection's other events; a type without a
/// handler is logged and counted, not fatal (Channels raises ValueError: one stray sender in
/// a group would otherwise close every member's connection).
/// Thread-safety: the runtime never runs two of its coroutines at once.
class Consumer {
 public:
  using MessageHandler = std::function<Task<void>(const Message&)>;

  virtual ~Consumer() = default;

  /// Handles the connection from start to end. Raw consumers loop over Receive().
  virtual Task<void> Run() = 0;

  /// Called by the runtime before Run().
  void Bind(Scope* scope, Connection* connection) {
    scope_ = scope;
    connection_ = connection;
  }

 protected:
  Scope& scope() { return *scope_; }
  const Scope& scope() const { return *scope_; }
  Connection& connection() { return *connection_; }
  Task<Event> Receive() { return connection_->Receive(); }
  Task<void> Send(Event event) { return connection_->Send(std::move(event)); }
  Task<std::optional<Event>> ReceiveUntil(std::chrono::steady_clock::time_point deadline) {
    return connection_->ReceiveUntil(deadline);
  }
  /// Connection::SaveState: what a resumed instance starts from (docs/failover.md).
  void SaveState(std::string state) { connection_->SaveState(std::move(state)); }

  // ---- The channel layer ----
  const std::string& channel_name() const { return connection_->ChannelName(); }
  /// Adds this connection's channel to `group` (refreshing its 86 400 s expiry).
  Task<void> GroupAdd(std::string group);
  Task<void> GroupDiscard(std::string group);
  /// One message to every channel in `group`; members that are full are skipped.
  Task<void> GroupSend(std::string group, const Message& message);
  /// One message to `channel` (another connection's channel_name(), or a named channel such
  /// as a background channel): ChannelFull when it holds its capacity.
  Task<void> ChannelSend(std::string channel, const Message& message);
  /// Fenced off: a message written as a braced list in the call (`co_await GroupSend(g,
  /// {{"type", "x"}})`) is a braced temporary in a co_await expression, which GCC 12
  /// destroys twice. Build the Message in a named local first.
  Task<void> GroupSend(std::string group, Message::initializer_list_t message) = delete;
  Task<void> ChannelSend(std::string channel, Message::initializer_list_t message) = delete;
  /// The handler for messages of `type` ("chat.message"); a later call replaces it.
  void On(std::string type, MessageHandler handler);
  /// Groups joined before the connection is handled (a WebSocket: before OnConnect, so
  /// before it is accepted) and left when it ends (the gateway leaves every group of a
  /// channel it closes). Channels' `groups` attribute.
  virtual std::vector<std::string> Groups() const { return {}; }
  /// Calls the handler for the message's type (or reports it unhandled).
  Task<void> Dispatch(const LayerMessage& message);
  /// Joins Groups().
  Task<void> JoinGroups();

 private:
  Scope* scope_ = nullptr;
  Connection* connection_ = nullptr;
  std::unordered_map<std::string, MessageHandler> handlers_;
};

/// Makes a consumer for a scope. Routers and middleware are Applications too.
/// Thread-safety: Create may be called from several threads at once.
class Application {
 public:
  virtual ~Application() = default;
  /// A consumer for this connection. May edit the scope (e.g. url_route). Never null.
  virtual std::unique_ptr<Consumer> Create(Scope& scope) = 0;
  /// The named channels this application consumes (Router::Channel), announced to gateways.
  virtual std::vector<std::string> Channels() const { return {}; }
};

/// An Application that constructs a T for every connection.
template <class T>
class ConsumerFactory final : public Application {
 public:
  std::unique_ptr<Consumer> Create(Scope& /*scope*/) override { return std::make_unique<T>(); }
};

template <class T>
std::shared_ptr<Application> Make() {
  return std::make_shared<ConsumerFactory<T>>();
}

}  // namespace sluice
