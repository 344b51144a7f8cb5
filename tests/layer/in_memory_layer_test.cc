#include "layer/in_memory_layer.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <string>

#include "layer/message.h"
#include "tests/layer/layer_harness.h"

namespace sluice::layer {
namespace {

using testing::Chat;

class InMemoryLayerTest : public ::testing::Test {
 protected:
  Options MakeOptions() {
    Options options;
    options.gateway_id = "gw1";
    options.clock = [this] { return now_; };
    return options;
  }
  void Reset(Options options) {
    layer_ = std::make_unique<InMemoryLayer>(io_.get_executor(), std::move(options));
    call_ = std::make_unique<testing::Caller>(io_, *layer_);
  }
  void SetUp() override { Reset(MakeOptions()); }

  boost::asio::io_context io_;
  double now_ = 1'700'000'000.0;
  std::unique_ptr<InMemoryLayer> layer_;
  std::unique_ptr<testing::Caller> call_;
};

TEST_F(InMemoryLayerTest, NamesLocalChannelsAfterTheGateway) {
  EXPECT_EQ(layer_->NewChannel(0x2a), "specific.gw1!2a");
  EXPECT_TRUE(ValidChannelName(layer_->NewChannel(~uint64_t{0})));
  Options bad = MakeOptions();
  bad.gateway_id = "gw!1";
  EXPECT_THROW(InMemoryLayer(io_.get_executor(), bad), std::invalid_argument);
}

TEST_F(InMemoryLayerTest, DeliversInOrderWhetherTheReceiveCameFirstOrNot) {
  const std::string channel = layer_->NewChannel(1);
  ASSERT_EQ(call_->Send(channel, Chat("one")), Status::kOk);
  ASSERT_EQ(call_->Send(channel, Chat("two")), Status::kOk);
  EXPECT_EQ((*call_->Receive(channel).message())["text"], "one");
  EXPECT_EQ((*call_->Receive(channel).message())["text"], "two");

  testing::Received waiting = call_->Receive(channel);
  EXPECT_FALSE(waiting.status());  // nothing queued: it waits
  ASSERT_EQ(call_->Send(channel, Chat("three")), Status::kOk);
  testing::RunUntil(io_, [&] { return waiting.status().has_value(); });
  ASSERT_EQ(waiting.status(), Status::kOk);
  EXPECT_EQ(*waiting.message(), Chat("three"));
  EXPECT_EQ(layer_->stats().sent, 3u);
  EXPECT_EQ(layer_->stats().received, 3u);
}

TEST_F(InMemoryLayerTest, BytesSurvive) {
  const std::string channel = layer_->NewChannel(1);
  Message message = {{"type", "blob"}, {"data", Message::binary({0, 255, 7})}};
  ASSERT_EQ(call_->Send(channel, message), Status::kOk);
  EXPECT_EQ(*call_->Receive(channel).message(), message);
}

TEST_F(InMemoryLayerTest, OneReceiveAtATime) {
  const std::string channel = layer_->NewChannel(1);
  testing::Received first = call_->Receive(channel);
  testing::Received second = call_->Receive(channel);
  EXPECT_FALSE(first.status());
  EXPECT_EQ(second.status(), Status::kInvalid);
}

TEST_F(InMemoryLayerTest, AFullChannelRefusesTheSender) {
  const std::string channel = layer_->NewChannel(1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(call_->Send(channel, Chat("x")), Status::kOk);
  EXPECT_EQ(call_->Send(channel, Chat("x")), Status::kChannelFull);
  EXPECT_EQ(layer_->stats().channel_full, 1u);
  ASSERT_EQ(call_->Receive(channel).status(), Status::kOk);
  EXPECT_EQ(call_->Send(channel, Chat("x")), Status::kOk);  // room again
}

TEST_F(InMemoryLayerTest, CapacityRulesOverrideByNameFirstMatchWins) {
  Options options = MakeOptions();
  options.channel_capacity.push_back(CapacityRule::Glob("thumb*", 2));
  options.channel_capacity.push_back(CapacityRule::Glob("*", 3));
  Reset(options);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(call_->Send("thumbnails", Chat("x")), Status::kOk);
  EXPECT_EQ(call_->Send("thumbnails", Chat("x")), Status::kChannelFull);
  const std::string channel = layer_->NewChannel(1);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call_->Send(channel, Chat("x")), Status::kOk);
  EXPECT_EQ(call_->Send(channel, Chat("x")), Status::kChannelFull);
}

TEST_F(InMemoryLayerTest, MessagesExpireUnreadAndFreeTheirRoom) {
  Options options = MakeOptions();
  options.capacity = 2;
  Reset(options);
  const std::string channel = layer_->NewChannel(1);
  ASSERT_EQ(call_->Send(channel, Chat("old")), Status::kOk);
  now_ += 30;
  ASSERT_EQ(call_->Send(channel, Chat("newer")), Status::kOk);
  EXPECT_EQ(call_->Send(channel, Chat("x")), Status::kChannelFull);
  now_ += 30.5;  // "old" is 60.5 s old, "newer" 30.5 s
  ASSERT_EQ(call_->Send(channel, Chat("newest")), Status::kOk);
  EXPECT_EQ(layer_->stats().expired, 1u);
  EXPECT_EQ((*call_->Receive(channel).message())["text"], "newer");
  now_ += 61;
  EXPECT_FALSE(call_->Receive(channel).status());  // "newest" expired too: the receive waits
  EXPECT_EQ(layer_->stats().expired, 2u);
}

TEST_F(InMemoryLayerTest, RefusesTooLargeAndInvalid) {
  const std::string channel = layer_->NewChannel(1);
  Message big = {{"type", "a"},
                 {"b", Message::binary(std::vector<std::uint8_t>(kMaxMessageBytes))}};
  EXPECT_EQ(call_->Send(channel, big), Status::kTooLarge);
  EXPECT_EQ(call_->GroupSend("g", big), Status::kTooLarge);
  EXPECT_EQ(call_->Send(channel, Message{{"text", "no type"}}), Status::kInvalid);
  EXPECT_EQ(call_->Send("bad name", Chat("x")), Status::kInvalid);
  EXPECT_EQ(call_->GroupAdd("bad!group", channel), Status::kInvalid);
  EXPECT_EQ(call_->Receive("specific.gw1!").status(), Status::kInvalid);
  EXPECT_EQ(layer_->stats().too_large, 2u);
  EXPECT_EQ(layer_->stats().invalid, 4u);
}

TEST_F(InMemoryLayerTest, GroupSendReachesMembersAndCountsTheFullOnesItSkips) {
  Options options = MakeOptions();
  options.capacity = 1;
  Reset(options);
  const std::string a = layer_->NewChannel(1), b = layer_->NewChannel(2), c = layer_->NewChannel(3);
  for (const auto& channel : {a, b, c}) ASSERT_EQ(call_->GroupAdd("room", channel), Status::kOk);
  ASSERT_EQ(call_->Send(b, Chat("filler")), Status::kOk);  // b is full
  ASSERT_EQ(call_->GroupSend("room", Chat("hi")), Status::kOk);
  EXPECT_EQ(layer_->stats().group_skipped, 1u);
  EXPECT_EQ(*call_->Receive(a).message(), Chat("hi"));
  EXPECT_EQ(*call_->Receive(b).message(), Chat("filler"));
  EXPECT_EQ(*call_->Receive(c).message(), Chat("hi"));
  EXPECT_EQ(layer_->stats().group_sends, 1u);
}

TEST_F(InMemoryLayerTest, GroupDiscardAndMembershipExpiry) {
  const std::string a = layer_->NewChannel(1), b = layer_->NewChannel(2);
  ASSERT_EQ(call_->GroupAdd("room", a), Status::kOk);
  ASSERT_EQ(call_->GroupAdd("room", b), Status::kOk);
  ASSERT_EQ(call_->GroupDiscard("room", b), Status::kOk);
  ASSERT_EQ(call_->GroupDiscard("room", b), Status::kOk);  // not a member: no error
  ASSERT_EQ(call_->GroupSend("room", Chat("1")), Status::kOk);
  EXPECT_EQ(*call_->Receive(a).message(), Chat("1"));
  EXPECT_FALSE(call_->Receive(b).status());
  layer_->CloseChannel(b);

  now_ += 86'000;
  ASSERT_EQ(call_->GroupAdd("room", a), Status::kOk);  // a re-add refreshes the membership
  now_ += 1'000;
  ASSERT_EQ(call_->GroupSend("room", Chat("2")), Status::kOk);
  EXPECT_EQ(*call_->Receive(a).message(), Chat("2"));
  now_ += 86'401;
  ASSERT_EQ(call_->GroupSend("room", Chat("3")), Status::kOk);
  EXPECT_FALSE(call_->Receive(a).status());  // expired membership: nothing arrives
}

TEST_F(InMemoryLayerTest, ClosingAChannelCancelsItsReceiveAndLeavesItsGroups) {
  const std::string a = layer_->NewChannel(1), b = layer_->NewChannel(2);
  ASSERT_EQ(call_->GroupAdd("room", a), Status::kOk);
  ASSERT_EQ(call_->GroupAdd("room", b), Status::kOk);
  testing::Received pending = call_->Receive(a);
  layer_->CloseChannel(a);
  testing::RunUntil(io_, [&] { return pending.status().has_value(); });
  EXPECT_EQ(pending.status(), Status::kCancelled);
  EXPECT_EQ(call_->Receive(a).status(), Status::kCancelled);

  ASSERT_EQ(call_->GroupSend("room", Chat("hi")), Status::kOk);
  EXPECT_EQ(layer_->stats().dropped_closed, 0u);  // a left the group: nothing sent to it
  EXPECT_EQ(call_->Send(a, Chat("late")), Status::kOk);
  EXPECT_EQ(layer_->stats().dropped_closed, 1u);
  EXPECT_EQ(*call_->Receive(b).message(), Chat("hi"));
}

TEST_F(InMemoryLayerTest, NamedChannelsArePulledAndBounded) {
  Options options = MakeOptions();
  options.max_named_channels = 2;
  Reset(options);
  ASSERT_EQ(call_->Send("thumbnails", Chat("t1")), Status::kOk);
  ASSERT_EQ(call_->Send("resize", Chat("r1")), Status::kOk);
  EXPECT_EQ(call_->Send("third", Chat("x")), Status::kChannelFull);
  EXPECT_EQ(*call_->Receive("thumbnails").message(), Chat("t1"));
  EXPECT_EQ(call_->Send("third", Chat("x")), Status::kOk);  // "thumbnails" is empty: gone

  testing::Received pending = call_->Receive("thumbnails");
  EXPECT_FALSE(pending.status());
  layer_->CloseChannel("thumbnails");
  testing::RunUntil(io_, [&] { return pending.status().has_value(); });
  EXPECT_EQ(pending.status(), Status::kCancelled);
  EXPECT_EQ(*call_->Receive("resize").message(), Chat("r1"));
}

TEST_F(InMemoryLayerTest, MembershipsAreBounded) {
  Options options = MakeOptions();
  options.max_groups_per_channel = 2;
  options.max_memberships = 3;
  Reset(options);
  const std::string a = layer_->NewChannel(1);
  ASSERT_EQ(call_->GroupAdd("g1", a), Status::kOk);
  ASSERT_EQ(call_->GroupAdd("g2", a), Status::kOk);
  EXPECT_EQ(call_->GroupAdd("g3", a), Status::kChannelFull);
  ASSERT_EQ(call_->GroupAdd("g1", "thumbnails"), Status::kOk);
  EXPECT_EQ(call_->GroupAdd("g1", "other"), Status::kChannelFull);
  ASSERT_EQ(call_->GroupDiscard("g1", "thumbnails"), Status::kOk);
  EXPECT_EQ(call_->GroupAdd("g1", "other"), Status::kOk);
}

TEST_F(InMemoryLayerTest, CompletesOnTheCallersExecutor) {
  boost::asio::io_context shard;
  const std::string channel = layer_->NewChannel(1);
  std::optional<Status> status;
  layer_->Send(channel, Chat("x"),
               boost::asio::bind_executor(shard, [&](Status s) { status = s; }));
  io_.run();
  EXPECT_FALSE(status);  // the layer's loop ran the send; the completion waits on the shard
  shard.run();
  EXPECT_EQ(status, Status::kOk);

  testing::Received received;
  layer_->Receive(channel, boost::asio::bind_executor(shard, received.Handler()));
  io_.restart();
  io_.run();
  EXPECT_FALSE(received.status());
  shard.restart();
  shard.run();
  EXPECT_EQ(received.status(), Status::kOk);
}

}  // namespace
}  // namespace sluice::layer
