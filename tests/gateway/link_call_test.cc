#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <vector>

#include "common/inbound.h"
#include "common/protocol.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {
namespace {

/// A connection as the registry sees it: records what reaches it.
class RecordingEndpoint final : public Endpoint {
 public:
  void OnEnvelope(v1::Envelope& envelope) override { received.push_back(envelope); }
  void OnLinkLost() override { lost = true; }
  std::vector<v1::Envelope> received;
  bool lost = false;
};

v1::Frame Welcome(uint32_t capacity) {
  v1::Frame frame;
  v1::Welcome* welcome = frame.mutable_welcome();
  welcome->set_protocol_version(kProtocolVersion);
  welcome->set_worker_id("w1");
  welcome->set_capacity(capacity);
  welcome->mutable_receive_window()->set_events(8);
  welcome->mutable_receive_window()->set_bytes(4096);
  return frame;
}

// The gateway's link end, fed Frames as if read from a worker: the handshake, the worker's
// load, and demultiplexing envelopes to the shards' connections. No stream is started.
class LinkCallTest : public ::testing::Test {
 protected:
  LinkCallTest()
      : link_(HostPort{"127.0.0.1", 1}, options_, {&shard0_, &shard1_}, control_),
        call_(std::make_shared<LinkCall>(link_, options_, std::vector<Shard*>{&shard0_, &shard1_})),
        shards_{&shard0_, &shard1_} {}

  void RunShards() {
    for (auto& shard : shards_) {
      shard->io().restart();
      shard->io().poll();
    }
  }

  Options options_;
  boost::asio::io_context control_;
  Shard shard0_{0};
  Shard shard1_{1};
  WorkerLink link_;
  std::shared_ptr<LinkCall> call_;
  std::vector<Shard*> shards_;
};

TEST_F(LinkCallTest, AFirstFrameThatIsNotAWelcomeDropsTheLink) {
  v1::Frame frame;
  frame.mutable_heartbeat();
  EXPECT_FALSE(call_->OnFrame(InboundFrame::Of(frame)));
  EXPECT_FALSE(call_->ready());
}

TEST_F(LinkCallTest, AWelcomeOfAnotherVersionDropsTheLink) {
  v1::Frame frame = Welcome(10);
  frame.mutable_welcome()->set_protocol_version(kProtocolVersion + 1);
  EXPECT_FALSE(call_->OnFrame(InboundFrame::Of(frame)));
}

TEST_F(LinkCallTest, WelcomeMakesItReadyWithTheWorkersWindowAndCapacity) {
  v1::Frame frame = Welcome(10);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(frame)));
  EXPECT_TRUE(call_->ready());
  EXPECT_TRUE(call_->admitting());
  EXPECT_EQ(call_->worker_window().events(), 8u);
  EXPECT_EQ(call_->FreeSlots(), 10);
  call_->Reserve();
  EXPECT_EQ(call_->FreeSlots(), 9);
}

TEST_F(LinkCallTest, CapacityAdvertsAndDrainingAreTracked) {
  v1::Frame welcome = Welcome(10);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(welcome)));
  v1::Frame frame;
  frame.mutable_capacity()->set_capacity(10);
  frame.mutable_capacity()->set_active_total(7);
  frame.mutable_capacity()->set_active_link(2);  // 5 for other gateways
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(frame)));
  EXPECT_EQ(call_->FreeSlots(), 5);
  frame.mutable_capacity()->set_draining(true);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(frame)));
  EXPECT_FALSE(call_->admitting()) << "a draining worker gets no new connections";
  EXPECT_TRUE(call_->ready());
}

TEST_F(LinkCallTest, EnvelopesReachTheirConnectionsOnTheirShards) {
  v1::Frame welcome = Welcome(10);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(welcome)));
  auto on0 = std::make_shared<RecordingEndpoint>();
  auto on1 = std::make_shared<RecordingEndpoint>();
  const uint64_t id0 = shards_[0]->Register(on0, call_->generation());
  const uint64_t id1 = shards_[1]->Register(on1, call_->generation());
  v1::Frame frame;
  for (uint64_t id : {id1, id0, id1}) {
    v1::Envelope* envelope = frame.add_envelopes();
    envelope->set_connection_id(id);
    envelope->add_events()->mutable_websocket_send()->set_data(std::to_string(id));
  }
  v1::Envelope* foreign = frame.add_envelopes();
  foreign->set_connection_id(uint64_t{9} << 48);  // a shard that does not exist
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(frame)));
  RunShards();
  ASSERT_EQ(on0->received.size(), 1u);
  ASSERT_EQ(on1->received.size(), 2u);
  EXPECT_EQ(on1->received[0].connection_id(), id1);
}

TEST_F(LinkCallTest, ClosesGiveTheirSlotsBack) {
  v1::Frame welcome = Welcome(3);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(welcome)));
  call_->Reserve();
  call_->Reserve();
  EXPECT_EQ(call_->FreeSlots(), 1);
  v1::Frame frame;
  v1::Envelope* close = frame.add_envelopes();
  close->set_connection_id(1);
  close->mutable_close()->set_reason(v1::Close::REASON_DONE);
  ASSERT_TRUE(call_->OnFrame(InboundFrame::Of(frame)));
  EXPECT_EQ(call_->FreeSlots(), 2);
}

// A lost link is identified by its generation, so connections of a newer link to the same
// worker are untouched.
TEST_F(LinkCallTest, LinkLostReachesOnlyThatGenerationsConnections) {
  auto old_connection = std::make_shared<RecordingEndpoint>();
  auto new_connection = std::make_shared<RecordingEndpoint>();
  auto newer = std::make_shared<LinkCall>(link_, options_, shards_);
  EXPECT_NE(newer->generation(), call_->generation());
  shards_[0]->Register(old_connection, call_->generation());
  shards_[0]->Register(new_connection, newer->generation());
  shards_[0]->LinkLost(call_->generation());
  RunShards();
  EXPECT_TRUE(old_connection->lost);
  EXPECT_FALSE(new_connection->lost);
  EXPECT_EQ(shards_[0]->registered(), 1u);
}

}  // namespace
}  // namespace sluice::gateway
