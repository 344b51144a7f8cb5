// A client session's channel layer: its channel on the Open, messages forwarded as events
// only while the worker has credit, the instance's layer operations answered, its groups
// left when it ends. Driven through the session harness with an in-memory layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "gateway/http_session.h"
#include "layer/message.h"
#include "tests/gateway/session_harness.h"

namespace sluice::gateway {
namespace {

using testing::SessionHarness;
using testing::Window;

constexpr char kUpgrade[] =
    "GET /ws/chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

layer::Message Chat(std::string text) {
  return {{"type", "chat.message"}, {"text", std::move(text)}};
}

class ClientLayerTest : public ::testing::Test {
 protected:
  // The worker grants 3 events per connection: websocket.connect spends one.
  ClientLayerTest() : h_(Options(), Window(3, 1 << 20)), layer_(h_.UseLayer()) {}

  uint64_t Connect() {
    std::make_shared<HttpSession>(h_.shard(), h_.context(), h_.Connect(), false)->Start();
    h_.ClientSends(kUpgrade);
    auto sent = h_.TakeSent();
    EXPECT_EQ(sent.size(), 1u);
    if (sent.empty()) return 0;
    channel_ = sent[0].open().channel_name();
    return sent[0].connection_id();
  }
  // Layer messages the worker received, decoded.
  std::vector<layer::Message> Messages() {
    std::vector<layer::Message> out;
    for (const auto& envelope : h_.TakeSent()) {
      for (const auto& event : envelope.events()) {
        if (event.has_layer_message()) {
          out.push_back(*layer::DecodeMsgpack(event.layer_message().message()));
        }
      }
      for (const auto& result : envelope.layer_results()) results_.push_back(result);
    }
    return out;
  }
  void Send(const std::string& channel, layer::Message message,
            layer::Status want = layer::Status::kOk) {
    layer::Status got = layer::Status::kCancelled;
    layer_.Send(channel, std::move(message), [&got](layer::Status status) { got = status; });
    h_.Run();
    EXPECT_EQ(got, want);
  }
  v1::Envelope Ops(uint64_t id, std::vector<v1::LayerOp> ops) {
    v1::Envelope envelope;
    envelope.set_connection_id(id);
    for (auto& op : ops) *envelope.add_layer_ops() = std::move(op);
    return envelope;
  }
  static v1::LayerOp GroupAdd(uint64_t op_id, std::string group) {
    v1::LayerOp op;
    op.set_op_id(op_id);
    op.mutable_group_add()->set_group(std::move(group));
    return op;
  }
  static v1::LayerOp GroupSend(uint64_t op_id, std::string group, const layer::Message& message) {
    v1::LayerOp op;
    op.set_op_id(op_id);
    op.mutable_group_send()->set_group(std::move(group));
    op.mutable_group_send()->set_message(layer::EncodeMsgpack(message));
    return op;
  }
  static v1::LayerOp SendTo(uint64_t op_id, std::string channel, std::string bytes) {
    v1::LayerOp op;
    op.set_op_id(op_id);
    op.mutable_send()->set_channel(std::move(channel));
    op.mutable_send()->set_message(std::move(bytes));
    return op;
  }

  SessionHarness h_;
  layer::InMemoryLayer& layer_;
  std::string channel_;
  std::vector<v1::LayerResult> results_;
};

TEST_F(ClientLayerTest, TheOpenNamesTheChannelAndItsMessagesBecomeEvents) {
  Connect();
  EXPECT_EQ(channel_.rfind("specific.gw!", 0), 0u) << channel_;
  Send(channel_, Chat("hi"));
  const auto got = Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Chat("hi"));
}

TEST_F(ClientLayerTest, MessagesAreForwardedOnlyWithCreditAndWaitInTheChannelMeanwhile) {
  const uint64_t id = Connect();
  for (int i = 0; i < 5; ++i) Send(channel_, Chat(std::to_string(i)));
  // Two events of credit were left after websocket.connect.
  auto got = Messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], Chat("1"));
  // The rest waited in the channel; credit brings them, in order.
  v1::Envelope credit;
  credit.set_connection_id(id);
  credit.mutable_credit()->set_events(3);
  credit.mutable_credit()->set_bytes(1 << 20);
  h_.WorkerSends({credit});
  got = Messages();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], Chat("2"));
  EXPECT_EQ(got[2], Chat("4"));
}

TEST_F(ClientLayerTest, OperationsAreAnsweredWithTheConnectionAsTheMember) {
  const uint64_t id = Connect();
  h_.WorkerSends({Ops(id, {GroupAdd(1, "room"), GroupSend(2, "room", Chat("to all")),
                           SendTo(3, "bad name!", layer::EncodeMsgpack(Chat("x"))),
                           SendTo(4, channel_, "not msgpack")})});
  h_.Run();
  const auto got = Messages();
  // Answers come as each operation ends (a refused one at once), matched by op id.
  std::sort(results_.begin(), results_.end(),
            [](const auto& a, const auto& b) { return a.op_id() < b.op_id(); });
  ASSERT_EQ(results_.size(), 4u);
  EXPECT_EQ(results_[0].op_id(), 1u);
  EXPECT_EQ(results_[0].status(), v1::LayerResult::STATUS_OK);
  EXPECT_EQ(results_[1].status(), v1::LayerResult::STATUS_OK);
  EXPECT_EQ(results_[2].status(), v1::LayerResult::STATUS_INVALID);
  EXPECT_EQ(results_[3].status(), v1::LayerResult::STATUS_INVALID);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Chat("to all"));
}

TEST_F(ClientLayerTest, AnHttpRequestsChannelIsCreatedByItsFirstOperation) {
  std::make_shared<HttpSession>(h_.shard(), h_.context(), h_.Connect(), false)->Start();
  h_.ClientSends("GET /tasks HTTP/1.1\r\nHost: a\r\n\r\n");
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  const uint64_t id = sent[0].connection_id();
  channel_ = sent[0].open().channel_name();
  EXPECT_EQ(channel_.rfind("specific.gw!", 0), 0u) << channel_;
  // Named, not created: a send to it finds no channel (counted, as for a closed one).
  Send(channel_, Chat("too early"));
  EXPECT_EQ(layer_.stats().dropped_closed.load(), 1u);
  EXPECT_TRUE(Messages().empty());
  // The first operation creates it before it runs; from then on messages arrive.
  h_.WorkerSends({Ops(id, {GroupAdd(1, "room")})});
  Send(channel_, Chat("now"));
  const auto got = Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Chat("now"));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].status(), v1::LayerResult::STATUS_OK);
}

TEST_F(ClientLayerTest, AnEndedConnectionLeavesItsGroupsAndItsChannel) {
  const uint64_t id = Connect();
  v1::Envelope accept = Ops(id, {GroupAdd(1, "room")});
  accept.add_events()->mutable_websocket_accept();
  h_.WorkerSends({accept});
  h_.ClientReads();
  h_.ClientCloses();
  h_.TakeSent();
  // The group is empty now: nothing is delivered, nothing counted as dropped.
  layer::Status status = layer::Status::kCancelled;
  layer_.GroupSend("room", Chat("anyone?"), [&status](layer::Status s) { status = s; });
  h_.Run();
  EXPECT_EQ(status, layer::Status::kOk);
  EXPECT_EQ(layer_.stats().dropped_closed.load(), 0u);
  // A direct send to the closed channel is accepted and counted as dropped (as Channels).
  Send(channel_, Chat("late"));
  EXPECT_EQ(layer_.stats().dropped_closed.load(), 1u);
  EXPECT_TRUE(Messages().empty());
}

// A move keeps the connection's channel, so its groups stay; a message the old instance was
// sent and never acknowledged goes to the new one, then what waited in the channel.
TEST_F(ClientLayerTest, AMoveKeepsTheChannelItsGroupsAndUnacknowledgedMessages) {
  const uint64_t id = Connect();
  v1::Event accept;
  accept.mutable_websocket_accept();
  v1::Envelope accepted;
  accepted.set_connection_id(id);
  *accepted.add_events() = accept;
  h_.WorkerSends({accepted, Ops(id, {GroupAdd(1, "room")})});
  h_.Run();
  Send(channel_, Chat("unacknowledged"));
  ASSERT_EQ(Messages().size(), 1u);
  h_.LinkLostAndAnotherWorker();
  auto sent = h_.TakeSent();
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent[0].has_open());
  EXPECT_EQ(sent[0].open().channel_name(), channel_);
  EXPECT_TRUE(sent[0].events(0).has_websocket_resume());
  std::vector<layer::Message> got;
  for (const auto& envelope : sent) {
    for (const auto& event : envelope.events()) {
      if (event.has_layer_message()) {
        got.push_back(*layer::DecodeMsgpack(event.layer_message().message()));
      }
    }
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Chat("unacknowledged"));
  // The group still has the connection: a group send reaches the new instance.
  layer::Status status = layer::Status::kCancelled;
  layer_.GroupSend("room", Chat("after the move"), [&](layer::Status s) { status = s; });
  h_.Run();
  EXPECT_EQ(status, layer::Status::kOk);
  got = Messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Chat("after the move"));
}

}  // namespace
}  // namespace sluice::gateway
