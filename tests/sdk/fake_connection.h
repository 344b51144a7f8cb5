#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/consumer.h"

namespace sluice::testing {

/// A Connection that hands out scripted events and records what the consumer sends.
/// Receive on an empty inbox throws std::runtime_error (the consumer read too far);
/// ReceiveUntil on an empty inbox returns nullopt (the deadline passed). Layer calls are
/// recorded and answered by `on_layer` (which may throw a LayerError), or succeed.
class FakeConnection final : public Connection {
 public:
  std::deque<Event> inbox;
  std::vector<Event> sent;
  int receives = 0;
  bool gone = false;  // Send throws Disconnected
  std::string channel_name = "specific.test!1";
  std::vector<LayerCall> calls;
  std::function<void(const LayerCall&)> on_layer;
  std::vector<LayerMessage> unhandled;
  std::vector<std::string> saved;  // SaveState's calls

  Task<std::optional<Event>> ReceiveUntil(std::chrono::steady_clock::time_point) override {
    if (inbox.empty()) co_return std::nullopt;
    co_return co_await Receive();
  }
  const std::string& ChannelName() const override { return channel_name; }
  Task<void> Layer(LayerCall call) override {
    calls.push_back(call);
    if (on_layer) on_layer(calls.back());
    co_return;
  }
  void Unhandled(const LayerMessage& message) override { unhandled.push_back(message); }
  void SaveState(std::string state) override { saved.push_back(std::move(state)); }

  Task<Event> Receive() override {
    ++receives;
    if (inbox.empty()) throw std::runtime_error("FakeConnection: no more events");
    Event event = std::move(inbox.front());
    inbox.pop_front();
    co_return event;
  }

  Task<void> Send(Event event) override {
    if (gone) throw Disconnected("FakeConnection: gone");
    sent.push_back(std::move(event));
    co_return;
  }
};

/// Binds `consumer` to `connection` and runs it to completion on a fresh io_context.
/// Returns what Run() threw, or null.
inline std::exception_ptr RunConsumer(Consumer& consumer, Scope& scope,
                                      FakeConnection& connection) {
  consumer.Bind(&scope, &connection);
  boost::asio::io_context io;
  bool finished = false;
  std::exception_ptr error;
  boost::asio::co_spawn(io, consumer.Run(), [&](std::exception_ptr e) {
    finished = true;
    error = e;
  });
  io.run();
  if (!finished) throw std::logic_error("RunConsumer: Run() never finished");
  return error;
}

/// Rethrows `error` to test its type; returns true when it is an E.
template <class E>
bool Is(std::exception_ptr error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace sluice::testing
