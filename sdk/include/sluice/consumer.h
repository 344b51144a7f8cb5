#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "sluice/event.h"

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
};

/// An ASGI application instance: one per client connection (one per HTTP request). The
/// runtime constructs it, binds it to its Connection, awaits Run(), then destroys it.
/// Subclass WebSocketConsumer or HttpConsumer unless you want raw ASGI events.
/// Thread-safety: the runtime never runs two of its coroutines at once.
class Consumer {
 public:
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
  Task<Event> Receive() { return connection_->Receive(); }
  Task<void> Send(Event event) { return connection_->Send(std::move(event)); }

 private:
  Scope* scope_ = nullptr;
  Connection* connection_ = nullptr;
};

/// Makes a consumer for a scope. Routers and middleware are Applications too.
/// Thread-safety: Create may be called from several threads at once.
class Application {
 public:
  virtual ~Application() = default;
  /// A consumer for this connection. May edit the scope (e.g. url_route). Never null.
  virtual std::unique_ptr<Consumer> Create(Scope& scope) = 0;
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
