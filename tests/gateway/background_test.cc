// Background channels at the gateway: a message pulled from a named channel goes to a
// worker that consumes it as a TYPE_CHANNEL instance, is acknowledged by its Close, and goes
// out again (same delivery id) when the worker rejects it or its link is lost.
#include "gateway/background.h"

#include <gtest/gtest.h>

#include <chrono>

#include "layer/message.h"
#include "tests/gateway/session_harness.h"

namespace sluice::gateway {
namespace {

using testing::SessionHarness;

class BackgroundTest : public ::testing::Test {
 protected:
  BackgroundTest() : layer_(h_.UseLayer()) {
    h_.picker().channels = {"tasks"};
    background_.emplace(
        h_.shard(), layer_, h_.picker(), "gw",
        Background::Counters{registry_.AddCounter("opened", ""),
                             registry_.AddCounter("redelivered", ""),
                             registry_.AddCounter("done", ""), registry_.AddCounter("failed", ""),
                             registry_.AddGauge("in_flight", "")});
    background_->Start();
    h_.Run();
  }
  ~BackgroundTest() override { background_->Stop(); }

  void Send(const std::string& channel, int n) {
    layer_.Send(channel, layer::Message{{"type", "task.run"}, {"n", n}}, [](layer::Status) {});
    h_.Run();
  }
  // Opens sent to the worker so far (waits for the background's tick when asked to).
  std::vector<v1::Envelope> Opens(size_t at_least = 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (opens_.size() < at_least && std::chrono::steady_clock::now() < deadline) {
      h_.shard().io().restart();
      h_.shard().io().run_one_for(std::chrono::milliseconds(50));
      for (auto& envelope : h_.TakeSent()) {
        if (envelope.has_open()) opens_.push_back(std::move(envelope));
      }
    }
    for (auto& envelope : h_.TakeSent()) {
      if (envelope.has_open()) opens_.push_back(std::move(envelope));
    }
    return opens_;
  }
  static v1::Envelope Close(uint64_t id, v1::Close::Reason reason) {
    v1::Envelope envelope;
    envelope.set_connection_id(id);
    envelope.mutable_close()->set_reason(reason);
    return envelope;
  }

  SessionHarness h_;
  layer::InMemoryLayer& layer_;
  MetricsRegistry registry_;
  std::optional<Background> background_;
  std::vector<v1::Envelope> opens_;
};

TEST_F(BackgroundTest, AMessageOpensAChannelInstanceAndItsCloseAcknowledgesIt) {
  Send("tasks", 1);
  const auto opens = Opens(1);
  ASSERT_EQ(opens.size(), 1u);
  const v1::Open& open = opens[0].open();
  EXPECT_EQ(open.scope().type(), v1::Scope::TYPE_CHANNEL);
  EXPECT_EQ(open.scope().path(), "tasks");
  EXPECT_EQ(open.channel_name(), "tasks");
  ASSERT_EQ(opens[0].events_size(), 1);
  const auto& message = opens[0].events(0).layer_message();
  EXPECT_EQ(message.delivery_id(), "gw.1");
  EXPECT_EQ((*layer::DecodeMsgpack(message.message()))["n"], 1);
  h_.WorkerSends({Close(opens[0].connection_id(), v1::Close::REASON_DONE)});
  EXPECT_EQ(registry_.Render().find("done 1") != std::string::npos, true) << registry_.Render();
  EXPECT_NE(registry_.Render().find("in_flight 0"), std::string::npos);
}

TEST_F(BackgroundTest, ALostLinkOrARejectionDeliversTheSameMessageAgain) {
  Send("tasks", 1);
  ASSERT_EQ(Opens(1).size(), 1u);
  h_.LinkLost();
  auto opens = Opens(2);
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_EQ(opens[1].events(0).layer_message().delivery_id(), "gw.1");
  h_.WorkerSends({Close(opens[1].connection_id(), v1::Close::REASON_REJECTED)});
  opens = Opens(3);
  ASSERT_EQ(opens.size(), 3u);
  EXPECT_EQ(opens[2].events(0).layer_message().delivery_id(), "gw.1");
  h_.WorkerSends({Close(opens[2].connection_id(), v1::Close::REASON_DONE)});
  const std::string metrics = registry_.Render();
  EXPECT_NE(metrics.find("redelivered 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("done 1"), std::string::npos) << metrics;
}

TEST_F(BackgroundTest, ChannelsNoWorkerConsumesAreNotPulled) {
  Send("elsewhere", 1);
  EXPECT_TRUE(Opens().empty());
  // The message stays in the layer for whoever consumes the channel later.
  layer::Status status = layer::Status::kCancelled;
  layer_.Receive("elsewhere", [&status](layer::Status s, layer::MessagePtr) { status = s; });
  h_.Run();
  EXPECT_EQ(status, layer::Status::kOk);
}

}  // namespace
}  // namespace sluice::gateway
