#include "worker/instance.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/protocol.h"
#include "sluice/http_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice::worker {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

/// The link side of instances: records what they send.
class FakeHost final : public InstanceHost {
 public:
  void Enqueue(unsigned, v1::Envelope&& envelope) override { sent.push_back(std::move(envelope)); }
  void InstanceEnded(unsigned, uint64_t, v1::Close::Reason reason, std::string detail) override {
    ended = true;
    end_reason = reason;
    end_detail = std::move(detail);
  }
  // The events the instance sent, in order.
  std::vector<v1::Event> Events() const {
    std::vector<v1::Event> out;
    for (const auto& envelope : sent) {
      for (const auto& event : envelope.events()) out.push_back(event);
    }
    return out;
  }
  uint32_t CreditEvents() const {
    uint32_t n = 0;
    for (const auto& envelope : sent) n += envelope.credit().events();
    return n;
  }

  std::vector<v1::Envelope> sent;
  bool ended = false;
  v1::Close::Reason end_reason = v1::Close::REASON_UNSPECIFIED;
  std::string end_detail;
};

/// An Application whose consumer runs `body`.
class LambdaApp final : public Application {
 public:
  using Body = std::function<Task<void>(Connection&)>;
  explicit LambdaApp(Body body) : body_(std::move(body)) {}
  std::unique_ptr<Consumer> Create(Scope&) override { return std::make_unique<Runner>(body_); }

 private:
  // Hands the body the consumer's own Receive/Send as a Connection.
  class Runner final : public Consumer, public Connection {
   public:
    explicit Runner(Body body) : body_(std::move(body)) {}
    Task<void> Run() override { co_await body_(*this); }
    Task<Event> Receive() override { return Consumer::Receive(); }
    Task<void> Send(Event event) override { return Consumer::Send(std::move(event)); }
    Task<std::optional<Event>> ReceiveUntil(
        std::chrono::steady_clock::time_point deadline) override {
      return Consumer::ReceiveUntil(deadline);
    }
    const std::string& ChannelName() const override { return channel_name(); }
    Task<void> Layer(LayerCall call) override { return connection().Layer(std::move(call)); }
    void Unhandled(const LayerMessage& message) override { connection().Unhandled(message); }
    void SaveState(std::string state) override { Consumer::SaveState(std::move(state)); }

   private:
    Body body_;
  };
  Body body_;
};

v1::Window Window(uint32_t events, uint64_t bytes) {
  v1::Window window;
  window.set_events(events);
  window.set_bytes(bytes);
  return window;
}

v1::Event Receive(std::string data) {
  v1::Event event;
  event.mutable_websocket_receive()->set_data(std::move(data));
  return event;
}

class InstanceTest : public ::testing::Test {
 protected:
  std::shared_ptr<Instance> Make(Scope::Type type, v1::Window receive = Window(4, 1 << 20),
                                 v1::Window send = Window(4, 1 << 20),
                                 std::chrono::milliseconds close_timeout = 10s) {
    Scope scope;
    scope.type = type;
    scope.path = "/test";
    return std::make_shared<Instance>(1, std::move(scope), "specific.gw!1", host_, 0, io_, receive,
                                      send, close_timeout, metrics_);
  }
  void Poll() {
    io_.restart();
    io_.poll();
  }
  // Runs the loop until `done` or a bound passes (for the timer-driven cases).
  void RunUntil(const std::function<bool()>& done, std::chrono::milliseconds bound = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
  }

  // The metrics outlive the loop: destroying it destroys the coroutines of consumers that
  // never returned, and their instances, which count in the metrics.
  MetricsRegistry registry_;
  Metrics metrics_{registry_};
  net::io_context io_;
  std::shared_ptr<FakeHost> host_ = std::make_shared<FakeHost>();
};

TEST_F(InstanceTest, EventsReachTheConsumerInOrderAndCreditComesBack) {
  std::vector<std::string> got;
  LambdaApp app([&](Connection& c) -> Task<void> {
    for (;;) {
      Event event = co_await c.Receive();
      if (auto* message = std::get_if<WebSocketReceive>(&event)) {
        got.push_back(message->data);
      } else {
        co_return;
      }
    }
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(4, 1 << 20));
  instance->Start(app);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) instance->Deliver(Receive(std::to_string(round * 4 + i)));
    Poll();
  }
  EXPECT_EQ(got.size(), 12u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], std::to_string(i));
  // Grants go back once half the window is consumed: all 12 events are given back.
  EXPECT_EQ(host_->CreditEvents(), 12u);
  v1::Event gone;
  gone.mutable_websocket_disconnect()->set_code(1000);
  instance->Deliver(std::move(gone));
  Poll();
  EXPECT_TRUE(host_->ended);
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_DONE);
}

// A gateway that sends beyond the window it was granted breaks the protocol: the instance
// is disconnected and it is counted; the inbox never grows past its bound.
TEST_F(InstanceTest, GatewayOverrunningTheWindowIsDisconnected) {
  std::vector<Event> got;
  LambdaApp app([&](Connection& c) -> Task<void> {
    // Reads nothing until woken by the disconnect, then takes what is there.
    for (;;) {
      Event event = co_await c.Receive();
      got.push_back(event);
      if (std::holds_alternative<WebSocketDisconnect>(event)) co_return;
    }
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(2, 1 << 20));
  for (int i = 0; i < 3; ++i) instance->Deliver(Receive("x"));
  instance->Start(app);
  Poll();
  EXPECT_EQ(metrics_.protocol_errors.value(), 1u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<WebSocketReceive>(got[0]));
  EXPECT_TRUE(std::holds_alternative<WebSocketReceive>(got[1]));
  ASSERT_TRUE(std::holds_alternative<WebSocketDisconnect>(got[2]));
  EXPECT_EQ(std::get<WebSocketDisconnect>(got[2]).code, 1006);
}

// Two coroutines of one consumer wait for credit at the same time; both finish, each in
// order, and neither wakes the other into a spin.
TEST_F(InstanceTest, TwoCoroutinesSendingAtOnceShareTheCredit) {
  LambdaApp app([](Connection& c) -> Task<void> {
    Event accept = WebSocketAccept{};
    co_await c.Send(std::move(accept));
    auto sender = [&c](char name) -> Task<void> {
      for (int i = 0; i < 10; ++i) {
        WebSocketSend message;
        message.data = std::string(1, name) + std::to_string(i);
        co_await c.Send(std::move(message));
      }
    };
    using namespace net::experimental::awaitable_operators;
    co_await (sender('a') && sender('b'));
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(4, 1 << 20), Window(2, 1 << 20));
  instance->Deliver([] {
    v1::Event connect;
    connect.mutable_websocket_connect();
    return connect;
  }());
  instance->Start(app);
  int rounds = 0;
  for (; !host_->ended && rounds < 100; ++rounds) {
    Poll();
    instance->Grant(Window(2, 1 << 20));  // the client took two more
  }
  ASSERT_TRUE(host_->ended) << "stuck after " << rounds << " grants";
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_DONE) << host_->end_detail;
  std::vector<std::string> a;
  std::vector<std::string> b;
  for (const auto& event : host_->Events()) {
    if (!event.has_websocket_send()) continue;
    const std::string& data = event.websocket_send().data();
    (data[0] == 'a' ? a : b).push_back(data.substr(1));
  }
  ASSERT_EQ(a.size(), 10u);
  ASSERT_EQ(b.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(a[i], std::to_string(i));
    EXPECT_EQ(b[i], std::to_string(i));
  }
  EXPECT_LE(rounds, 12) << "20 messages + accept at 2 per grant";
  EXPECT_GT(metrics_.send_stalls.value(), 0u);
}

TEST_F(InstanceTest, AfterACompleteResponseReceiveReportsTheEnd) {
  Event after;
  LambdaApp app([&](Connection& c) -> Task<void> {
    Event request = co_await c.Receive();
    Event start = HttpResponseStart{200, {}, false};
    co_await c.Send(std::move(start));
    Event body = HttpResponseBody{"done", false};
    co_await c.Send(std::move(body));
    after = co_await c.Receive();
  });
  auto instance = Make(Scope::Type::kHttp);
  v1::Event request;
  request.mutable_http_request();
  instance->Deliver(std::move(request));
  instance->Start(app);
  Poll();
  EXPECT_TRUE(std::holds_alternative<HttpDisconnect>(after));
  ASSERT_TRUE(host_->ended);
  // Start and body went out, nothing was needed from the gateway to end.
  EXPECT_EQ(host_->Events().size(), 2u);
}

TEST_F(InstanceTest, SendAfterTheLinkIsLostThrowsDisconnectedAndEndsQuietly) {
  bool threw = false;
  LambdaApp app([&](Connection& c) -> Task<void> {
    Event connect = co_await c.Receive();
    Event accept = WebSocketAccept{};
    co_await c.Send(std::move(accept));
    Event gone = co_await c.Receive();  // the disconnect
    try {
      WebSocketSend message;
      message.data = "late";
      co_await c.Send(std::move(message));
    } catch (const Disconnected&) {
      threw = true;
      throw;
    }
  });
  auto instance = Make(Scope::Type::kWebSocket);
  v1::Event connect;
  connect.mutable_websocket_connect();
  instance->Deliver(std::move(connect));
  instance->Start(app);
  Poll();
  instance->LinkLost();
  Poll();
  EXPECT_TRUE(threw);
  ASSERT_TRUE(host_->ended);
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_DONE);
}

TEST_F(InstanceTest, ConsumerIgnoringItsDisconnectIsCancelledAfterTheCloseTimeout) {
  LambdaApp app([](Connection&) -> Task<void> {
    net::steady_timer timer(co_await net::this_coro::executor, 1h);
    co_await timer.async_wait(net::use_awaitable);  // never returns by itself
  });
  auto instance = Make(Scope::Type::kHttp, Window(4, 1 << 20), Window(4, 1 << 20), 50ms);
  instance->Start(app);
  Poll();
  instance->LinkLost();
  RunUntil([&] { return host_->ended; });
  ASSERT_TRUE(host_->ended);
  EXPECT_EQ(metrics_.close_timeouts.value(), 1u);
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_DONE);
}

TEST_F(InstanceTest, InvalidSendIsAnApplicationError) {
  LambdaApp app([](Connection& c) -> Task<void> {
    Event body = HttpResponseBody{"no start", false};
    co_await c.Send(std::move(body));
  });
  auto instance = Make(Scope::Type::kHttp);
  instance->Start(app);
  Poll();
  ASSERT_TRUE(host_->ended);
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_APP_ERROR);
  EXPECT_NE(host_->end_detail.find("no http.response.start"), std::string::npos);
  EXPECT_EQ(metrics_.app_errors.value(), 1u);
}

// A draining worker hands a WebSocket back once its consumer has finished its event: the
// consumer's Receive throws HandedOver (it sees no disconnect), the instance ends with
// REASON_MOVED, and what it finished is acknowledged; what it never took is not.
TEST_F(InstanceTest, DrainHandsAWebSocketBackOnceItsEventIsFinished) {
  std::vector<std::string> got;
  bool disconnected = false;
  bool handed_over = false;
  LambdaApp app([&](Connection& c) -> Task<void> {
    Event connect = co_await c.Receive();
    Event accept = WebSocketAccept{};
    co_await c.Send(std::move(accept));
    try {
      for (;;) {
        Event event = co_await c.Receive();
        if (std::holds_alternative<WebSocketDisconnect>(event)) disconnected = true;
        if (auto* message = std::get_if<WebSocketReceive>(&event)) got.push_back(message->data);
      }
    } catch (const HandedOver&) {
      handed_over = true;
      throw;
    }
  });
  auto instance = Make(Scope::Type::kWebSocket);
  v1::Event connect;
  connect.mutable_websocket_connect();
  instance->Deliver(std::move(connect));
  instance->Deliver(Receive("one"), 1);
  instance->Start(app);
  Poll();
  ASSERT_EQ(got, std::vector<std::string>{"one"});
  instance->Deliver(Receive("two"), 2);  // not taken before the drain
  instance->Drain();
  Poll();
  EXPECT_TRUE(handed_over);
  EXPECT_FALSE(disconnected);
  EXPECT_EQ(got, std::vector<std::string>{"one"});
  EXPECT_TRUE(host_->ended);
  EXPECT_EQ(host_->end_reason, v1::Close::REASON_MOVED);
  uint64_t acked = 0;
  for (const auto& envelope : host_->sent) acked = std::max(acked, envelope.acked());
  EXPECT_EQ(acked, 1u);
  EXPECT_EQ(metrics_.handed_over.value(), 1u);
}

// An event is acknowledged, and its credit comes back, once the consumer asks for the next
// (a consumer that loops does so as soon as its handler returns); SaveState acknowledges the event
// being handled at once, with the state.
TEST_F(InstanceTest, EventsAreAcknowledgedWhenFinishedOrWhenStateIsSaved) {
  int handled = 0;
  LambdaApp app([&](Connection& c) -> Task<void> {
    for (;;) {
      Event event = co_await c.Receive();
      if (!std::holds_alternative<WebSocketReceive>(event)) co_return;
      if (++handled == 2) c.SaveState("after two");
    }
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(2, 1 << 20));
  instance->Start(app);
  Poll();
  instance->Deliver(Receive("a"), 7);
  Poll();
  // The consumer asked for the next event: "a" is finished, acknowledged, its credit back.
  ASSERT_EQ(host_->sent.size(), 1u);
  EXPECT_EQ(host_->sent[0].acked(), 7u);
  EXPECT_EQ(host_->sent[0].credit().events(), 1u);
  instance->Deliver(Receive("b"), 8);
  Poll();
  ASSERT_EQ(host_->sent.size(), 3u);
  EXPECT_EQ(host_->sent[1].state().data(), "after two");
  EXPECT_EQ(host_->sent[1].acked(), 8u);  // saved while handling "b"
  EXPECT_EQ(host_->sent[2].credit().events(), 1u);
  EXPECT_EQ(host_->sent[2].acked(), 0u);  // no news
  EXPECT_EQ(metrics_.states_saved.value(), 1u);
}

// Two coroutines of one consumer receiving at once: each event's credit comes back once,
// whichever coroutine asks for more next.
TEST_F(InstanceTest, TwoReceivingCoroutinesGiveEveryEventsCreditBack) {
  int got = 0;
  LambdaApp app([&](Connection& c) -> Task<void> {
    auto reader = [&]() -> Task<void> {
      for (;;) {
        Event event = co_await c.Receive();
        if (!std::holds_alternative<WebSocketReceive>(event)) co_return;
        ++got;
        // Let the other coroutine take the next event before this one asks again.
        co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
      }
    };
    using namespace net::experimental::awaitable_operators;
    co_await (reader() && reader());
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(4, 1 << 20));
  instance->Start(app);
  Poll();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) instance->Deliver(Receive("x"), round * 4 + i + 1);
    Poll();
  }
  EXPECT_EQ(got, 12);
  EXPECT_EQ(host_->CreditEvents(), 12u);
}

TEST_F(InstanceTest, SaveStateIsBoundedAndForWebSocketsOnly) {
  std::string too_big_error;
  std::string http_error;
  LambdaApp ws([&](Connection& c) -> Task<void> {
    try {
      c.SaveState(std::string(kMaxStateBytes + 1, 'x'));
    } catch (const std::length_error& e) {
      too_big_error = e.what();
    }
    c.SaveState(std::string(kMaxStateBytes, 'x'));
    co_return;
  });
  Make(Scope::Type::kWebSocket)->Start(ws);
  Poll();
  EXPECT_NE(too_big_error.find("over 16384"), std::string::npos) << too_big_error;
  ASSERT_EQ(host_->sent.size(), 1u);
  EXPECT_EQ(host_->sent[0].state().data().size(), kMaxStateBytes);
  LambdaApp http([&](Connection& c) -> Task<void> {
    try {
      c.SaveState("x");
    } catch (const std::logic_error& e) {
      http_error = e.what();
    }
    co_return;
  });
  Make(Scope::Type::kHttp)->Start(http);
  Poll();
  EXPECT_NE(http_error.find("only a WebSocket"), std::string::npos);
}

// A resumed instance starts accepted: websocket.resume carries the state, and an accept
// would break the ASGI rules.
TEST_F(InstanceTest, AResumedInstanceIsAcceptedAlready) {
  std::optional<std::string> state;
  std::string error;
  LambdaApp app([&](Connection& c) -> Task<void> {
    Event first = co_await c.Receive();
    state = std::get<WebSocketResume>(first).state;
    WebSocketSend hello;
    hello.data = "back";
    co_await c.Send(std::move(hello));
    try {
      Event accept = WebSocketAccept{};
      co_await c.Send(std::move(accept));
    } catch (const std::logic_error& e) {
      error = e.what();
    }
  });
  auto instance = Make(Scope::Type::kWebSocket);
  v1::Event resume;
  resume.mutable_websocket_resume()->set_state("s");
  resume.mutable_websocket_resume()->set_saved(true);
  instance->Deliver(std::move(resume));
  instance->Start(app);
  Poll();
  EXPECT_EQ(state, std::optional<std::string>("s"));
  ASSERT_EQ(host_->Events().size(), 1u);
  EXPECT_EQ(host_->Events()[0].websocket_send().data(), "back");
  EXPECT_NE(error.find("already accepted"), std::string::npos) << error;
  EXPECT_EQ(metrics_.resumed.value(), 1u);
}

// ---- The channel layer ----------------------------------------------------------------

LayerCall GroupAddCall(std::string group) {
  LayerCall call;
  call.kind = LayerCall::Kind::kGroupAdd;
  call.target = std::move(group);
  return call;
}

v1::LayerResult Result(uint64_t op_id, v1::LayerResult::Status status) {
  v1::LayerResult result;
  result.set_op_id(op_id);
  result.set_status(status);
  return result;
}

TEST_F(InstanceTest, LayerCallsWaitForTheGatewaysAnswerAndThrowItsErrors) {
  std::vector<std::string> outcomes;
  LambdaApp app([&](Connection& c) -> Task<void> {
    EXPECT_EQ(c.ChannelName(), "specific.gw!1");
    for (int i = 0; i < 2; ++i) {
      try {
        co_await c.Layer(GroupAddCall("room"));
        outcomes.emplace_back("ok");
      } catch (const ChannelFull&) {
        outcomes.emplace_back("full");
      }
    }
  });
  auto instance = Make(Scope::Type::kWebSocket);
  instance->Start(app);
  Poll();
  ASSERT_EQ(host_->sent.size(), 1u);
  ASSERT_EQ(host_->sent[0].layer_ops_size(), 1);
  EXPECT_EQ(host_->sent[0].layer_ops(0).group_add().group(), "room");
  const uint64_t first = host_->sent[0].layer_ops(0).op_id();
  EXPECT_TRUE(outcomes.empty()) << "the call waits for the answer";
  instance->OnLayerResult(Result(first, v1::LayerResult::STATUS_OK));
  Poll();
  ASSERT_EQ(host_->sent.size(), 2u);
  instance->OnLayerResult(
      Result(host_->sent[1].layer_ops(0).op_id(), v1::LayerResult::STATUS_CHANNEL_FULL));
  Poll();
  EXPECT_EQ(outcomes, (std::vector<std::string>{"ok", "full"}));
  EXPECT_TRUE(host_->ended);
  EXPECT_EQ(metrics_.layer_calls.value(), 2u);
}

TEST_F(InstanceTest, AtMostKMaxLayerOpsAreOutstandingAndTheRestWait) {
  int answered = 0;
  // kMaxLayerOps + 1 calls at once, from as many coroutines; no answer comes yet.
  LambdaApp flood([&](Connection& c) -> Task<void> {
    for (uint32_t i = 0; i <= kMaxLayerOps; ++i) {
      net::co_spawn(co_await net::this_coro::executor, c.Layer(GroupAddCall("g")),
                    [&](const std::exception_ptr&) { ++answered; });
    }
    co_await c.Receive();  // the disconnect
  });
  auto instance = Make(Scope::Type::kWebSocket);
  instance->Start(flood);
  Poll();
  size_t ops = 0;
  for (const auto& envelope : host_->sent) ops += static_cast<size_t>(envelope.layer_ops_size());
  EXPECT_EQ(ops, kMaxLayerOps);
  EXPECT_EQ(metrics_.layer_stalls.value(), 1u);
  instance->OnLayerResult(Result(1, v1::LayerResult::STATUS_OK));
  Poll();
  ops = 0;
  for (const auto& envelope : host_->sent) ops += static_cast<size_t>(envelope.layer_ops_size());
  EXPECT_EQ(ops, kMaxLayerOps + 1) << "the waiting call went once one was answered";
  // The client leaves: calls still waiting throw Disconnected; none is left hanging.
  instance->LinkLost();
  Poll();
  EXPECT_EQ(answered, static_cast<int>(kMaxLayerOps) + 1);
}

TEST_F(InstanceTest, LayerMessagesArriveAsEventsWithinCredit) {
  std::vector<Message> got;
  LambdaApp app([&](Connection& c) -> Task<void> {
    for (;;) {
      Event event = co_await c.Receive();
      auto* message = std::get_if<LayerMessage>(&event);
      if (message == nullptr) co_return;
      got.push_back(message->message);
    }
  });
  auto instance = Make(Scope::Type::kWebSocket, Window(2, 1 << 20));
  instance->Start(app);
  for (int i = 0; i < 2; ++i) {
    const Message message = {{"type", "chat.message"}, {"n", i}};
    const std::vector<uint8_t> bytes = Message::to_msgpack(message);
    v1::Event event;
    event.mutable_layer_message()->set_message(bytes.data(), bytes.size());
    instance->Deliver(std::move(event));
  }
  Poll();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]["n"], 1);
  EXPECT_EQ(host_->CreditEvents(), 2u) << "consumed layer messages give their credit back";
  v1::Event bad;
  bad.mutable_layer_message()->set_message("not msgpack");
  instance->Deliver(std::move(bad));
  Poll();
  EXPECT_EQ(metrics_.protocol_errors.value(), 1u);
}

}  // namespace
}  // namespace sluice::worker
