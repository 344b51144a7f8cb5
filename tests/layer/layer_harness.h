#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "layer/channel_layer.h"

namespace sluice::layer::testing {

/// Runs `io` until `done()`, until it has nothing left to do, or for at most `limit` (then
/// the test fails at the caller, instead of hanging). Returns done().
template <class Done>
bool RunUntil(boost::asio::io_context& io, Done done,
              std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done() && !io.stopped()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    io.run_one_for(deadline - now);
  }
  return done();
}

/// A Receive whose outcome the test inspects later (copies share it: a Receive that
/// completes after the test dropped its copy writes into live memory).
class Received {
 public:
  auto Handler() {
    return [state = state_](Status s, MessagePtr m) {
      state->status = s;
      state->message = std::move(m);
    };
  }
  const std::optional<Status>& status() const { return state_->status; }
  const MessagePtr& message() const { return state_->message; }

 private:
  struct State {
    std::optional<Status> status;
    MessagePtr message;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

/// Calls one layer operation and runs `io` until it completes.
class Caller {
 public:
  Caller(boost::asio::io_context& io, ChannelLayer& layer) : io_(io), layer_(layer) {}

  Status Send(const std::string& channel, Message message) {
    return Wait([&](auto h) { layer_.Send(channel, std::move(message), std::move(h)); });
  }
  Status GroupAdd(const std::string& group, const std::string& channel) {
    return Wait([&](auto h) { layer_.GroupAdd(group, channel, std::move(h)); });
  }
  Status GroupDiscard(const std::string& group, const std::string& channel) {
    return Wait([&](auto h) { layer_.GroupDiscard(group, channel, std::move(h)); });
  }
  Status GroupSend(const std::string& group, Message message) {
    return Wait([&](auto h) { layer_.GroupSend(group, std::move(message), std::move(h)); });
  }
  /// Starts a Receive and runs `io` until it completes or nothing is left to run.
  Received Receive(const std::string& channel,
                   std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    Received received;
    layer_.Receive(channel, received.Handler());
    RunUntil(
        io_, [&] { return received.status().has_value(); }, limit);
    return received;
  }

 private:
  template <class Op>
  Status Wait(Op op) {
    std::optional<Status> status;
    op([&status](Status s) { status = s; });
    RunUntil(io_, [&] { return status.has_value(); });
    EXPECT_TRUE(status.has_value()) << "the operation never completed";
    return status.value_or(Status::kCancelled);
  }

  boost::asio::io_context& io_;
  ChannelLayer& layer_;
};

inline Message Chat(std::string text) {
  return Message{{"type", "chat.message"}, {"text", std::move(text)}};
}

}  // namespace sluice::layer::testing
