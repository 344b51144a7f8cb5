#include "common/link_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

v1::Envelope MakeEnvelope(uint64_t id, size_t body_bytes = 8) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.add_events()->mutable_websocket_send()->set_data(std::string(body_bytes, 'd'));
  return envelope;
}

std::vector<uint64_t> Ids(const v1::Frame& frame) {
  std::vector<uint64_t> ids;
  for (const auto& envelope : frame.envelopes()) ids.push_back(envelope.connection_id());
  return ids;
}

v1::Frame HelloFrame(const std::string& gateway_id) {
  v1::Frame frame;
  frame.mutable_hello()->set_protocol_version(1);
  frame.mutable_hello()->set_gateway_id(gateway_id);
  return frame;
}

TEST(LinkWriterTest, StartsIdle) {
  LinkWriter writer;
  EXPECT_FALSE(writer.writing());
  EXPECT_FALSE(writer.closed());
  EXPECT_EQ(writer.queued_bytes(), 0u);
}

TEST(LinkWriterTest, FirstPushStartsAWrite) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_TRUE(writer.writing());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{1}));
  EXPECT_EQ(writer.frame()->envelopes(0).events(0).websocket_send().data(), "dddddddd");
  EXPECT_EQ(writer.queued_bytes(), 0u);
}

TEST(LinkWriterTest, CountsTheFramesAndEnvelopesItWrites) {
  MetricsRegistry registry;
  LinkTraffic traffic(registry, "sluice_test");
  LinkWriter writer(nullptr, &traffic);
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(3)));
  ASSERT_TRUE(writer.WriteDone());  // 2 and 3 go out merged
  EXPECT_FALSE(writer.WriteDone());
  EXPECT_EQ(traffic.frames_sent.value(), 2u);
  EXPECT_EQ(traffic.envelopes_sent.value(), 3u);
  EXPECT_EQ(traffic.frames_received.value(), 0u);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("sluice_test_link_frames_total{direction=\"sent\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_test_link_envelopes_total{direction=\"sent\"} 3"), std::string::npos)
      << text;
}

TEST(LinkWriterTest, PushesDuringAWriteGoOutTogetherInTheNextFrame) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(3)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(4)));
  EXPECT_GT(writer.queued_bytes(), 0u);
  // The frame in flight is untouched by the pushes.
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{1}));

  ASSERT_TRUE(writer.WriteDone());
  EXPECT_TRUE(writer.writing());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(writer.queued_bytes(), 0u);

  EXPECT_FALSE(writer.WriteDone());  // nothing left
  EXPECT_FALSE(writer.writing());
}

TEST(LinkWriterTest, PushAfterWriteDoneStartsAgain) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.WriteDone());
  ASSERT_TRUE(writer.Push(MakeEnvelope(2)));
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{2}));
}

TEST(LinkWriterTest, LargeBacklogIsSplitIntoFramesInOrder) {
  const size_t one = EstimateBytes(MakeEnvelope(1));
  LinkWriter writer(nullptr, nullptr, 2 * one);
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  for (uint64_t id = 2; id <= 6; ++id) EXPECT_FALSE(writer.Push(MakeEnvelope(id)));
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{2, 3}));
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{4, 5}));
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{6}));
  EXPECT_FALSE(writer.WriteDone());
}

TEST(LinkWriterTest, BatchesFromSeveralOutboxesMergeIntoOneFrame) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  for (uint64_t base : {10, 20}) {  // two shards' batches, queued while the write is in flight
    Outbox outbox;
    outbox.Add(MakeEnvelope(base));
    outbox.Add(MakeEnvelope(base + 1));
    size_t bytes = 0;
    auto frames = outbox.Take(&bytes);
    EXPECT_GT(bytes, 0u);
    EXPECT_FALSE(writer.Push(std::move(frames), bytes));
  }
  EXPECT_GT(writer.queued_bytes(), 0u);
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{10, 11, 20, 21}));
  EXPECT_EQ(writer.queued_bytes(), 0u);
}

TEST(LinkWriterTest, ControlFrameWhenIdleIsWrittenAtOnce) {
  LinkWriter writer;
  ASSERT_TRUE(writer.PushFrame(HelloFrame("gw")));
  EXPECT_TRUE(writer.frame()->has_hello());
  EXPECT_EQ(writer.frame()->hello().gateway_id(), "gw");
  EXPECT_EQ(writer.frame()->envelopes_size(), 0);
}

TEST(LinkWriterTest, ControlFramesGoBeforeQueuedEnvelopes) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_FALSE(writer.PushFrame(HelloFrame("first")));
  EXPECT_FALSE(writer.Push(MakeEnvelope(3)));
  EXPECT_FALSE(writer.PushFrame(HelloFrame("second")));

  ASSERT_TRUE(writer.WriteDone());
  EXPECT_TRUE(writer.frame()->has_hello());
  EXPECT_EQ(writer.frame()->hello().gateway_id(), "first");
  EXPECT_EQ(writer.frame()->envelopes_size(), 0);
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(writer.frame()->hello().gateway_id(), "second");
  ASSERT_TRUE(writer.WriteDone());
  EXPECT_FALSE(writer.frame()->has_hello());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{2, 3}));
  EXPECT_FALSE(writer.WriteDone());
}

TEST(LinkWriterTest, HeartbeatOnANeverWrittenIdleLink) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Heartbeat(1ms));
  EXPECT_TRUE(writer.frame()->has_heartbeat());
  EXPECT_EQ(writer.frame()->envelopes_size(), 0);
  EXPECT_FALSE(writer.WriteDone());
}

TEST(LinkWriterTest, NoHeartbeatWhileWriting) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Heartbeat(0ms));
  // No heartbeat is left pending either: the write that ends finds nothing to send.
  EXPECT_FALSE(writer.WriteDone());
}

TEST(LinkWriterTest, NoHeartbeatRightAfterAWrite) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.WriteDone());
  EXPECT_FALSE(writer.Heartbeat(1h));
  EXPECT_FALSE(writer.writing());
}

TEST(LinkWriterTest, HeartbeatOnceIdleForTheInterval) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.WriteDone());
  EXPECT_FALSE(writer.Heartbeat(50ms));
  std::this_thread::sleep_for(80ms);
  ASSERT_TRUE(writer.Heartbeat(50ms));
  EXPECT_TRUE(writer.frame()->has_heartbeat());
  EXPECT_EQ(writer.frame()->envelopes_size(), 0);
  EXPECT_FALSE(writer.WriteDone());
  // The heartbeat itself counts as a write.
  EXPECT_FALSE(writer.Heartbeat(50ms));
}

TEST(LinkWriterTest, HeartbeatFrameCarriesNothingFromBefore) {
  LinkWriter writer;
  ASSERT_TRUE(writer.PushFrame(HelloFrame("gw")));
  EXPECT_FALSE(writer.WriteDone());
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(writer.Heartbeat(1ms));
  EXPECT_TRUE(writer.frame()->has_heartbeat());
  EXPECT_FALSE(writer.frame()->has_hello());
}

TEST(LinkWriterTest, StampIsAppliedToEveryFrame) {
  int stamps = 0;
  LinkWriter writer([&stamps](v1::Frame& frame) {
    ++stamps;
    frame.mutable_capacity()->set_capacity(100);
    frame.mutable_capacity()->set_active_total(static_cast<uint32_t>(stamps));
  });
  ASSERT_TRUE(writer.PushFrame(HelloFrame("gw")));
  EXPECT_EQ(writer.frame()->capacity().active_total(), 1u);
  EXPECT_EQ(writer.frame()->capacity().capacity(), 100u);
  EXPECT_FALSE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_EQ(stamps, 1);  // queued envelopes are stamped when their frame goes out

  ASSERT_TRUE(writer.WriteDone());
  EXPECT_EQ(Ids(*writer.frame()), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(writer.frame()->capacity().active_total(), 2u);
  EXPECT_FALSE(writer.WriteDone());

  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(writer.Heartbeat(1ms));
  EXPECT_TRUE(writer.frame()->has_heartbeat());
  EXPECT_EQ(writer.frame()->capacity().active_total(), 3u);
  EXPECT_EQ(stamps, 3);
}

TEST(LinkWriterTest, CloseDropsQueuedAndRefusesFurtherPushes) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_FALSE(writer.PushFrame(HelloFrame("gw")));
  writer.Close();
  EXPECT_TRUE(writer.closed());
  EXPECT_EQ(writer.queued_bytes(), 0u);
  EXPECT_FALSE(writer.WriteDone());
  EXPECT_FALSE(writer.writing());
  EXPECT_FALSE(writer.Push(MakeEnvelope(3)));
  EXPECT_FALSE(writer.PushFrame(HelloFrame("late")));
  EXPECT_FALSE(writer.Heartbeat(0ms));
  EXPECT_EQ(writer.queued_bytes(), 0u);
  EXPECT_FALSE(writer.writing());
}

TEST(LinkWriterTest, CloseWhenIdle) {
  LinkWriter writer;
  writer.Close();
  EXPECT_TRUE(writer.closed());
  EXPECT_FALSE(writer.Push(MakeEnvelope(1)));
  EXPECT_FALSE(writer.writing());
  EXPECT_FALSE(writer.Heartbeat(0ms));
}

// frame() must stay valid from a true return until WriteDone(): the write in flight owns it,
// even when the stream is closed meanwhile (Close is called while gRPC may still hold it).
TEST(LinkWriterTest, CloseLeavesTheFrameInFlightIntact) {
  LinkWriter writer;
  ASSERT_TRUE(writer.Push(MakeEnvelope(1)));
  const v1::Frame* in_flight = writer.frame();
  EXPECT_FALSE(writer.Push(MakeEnvelope(2)));
  EXPECT_FALSE(writer.Push(MakeEnvelope(3)));
  writer.Close();
  EXPECT_EQ(Ids(*in_flight), (std::vector<uint64_t>{1}));
  EXPECT_FALSE(writer.WriteDone());
}

TEST(LinkWriterTest, ConcurrentPushesAllGoOutOnceInPerThreadOrder) {
  LinkWriter writer;
  constexpr int kThreads = 2;
  constexpr uint64_t kPerThread = 2000;
  std::mutex mu;
  std::vector<uint64_t> written;
  // One thread plays the gRPC reactor: it "writes" a frame and calls WriteDone.
  auto deliver = [&](bool started_write) {
    while (started_write) {
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& envelope : writer.frame()->envelopes()) {
          written.push_back(envelope.connection_id());
        }
      }
      started_write = writer.WriteDone();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        deliver(writer.Push(MakeEnvelope(static_cast<uint64_t>(t) * 1000000 + i)));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_FALSE(writer.writing());
  ASSERT_EQ(written.size(), kThreads * kPerThread);
  std::vector<uint64_t> next(kThreads, 0);
  for (uint64_t id : written) {
    const auto t = static_cast<size_t>(id / 1000000);
    ASSERT_LT(t, static_cast<size_t>(kThreads));
    EXPECT_EQ(id % 1000000, next[t]);
    next[t] = id % 1000000 + 1;
  }
}

}  // namespace
}  // namespace sluice
