#include "common/frame_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

v1::Envelope MakeEnvelope(uint64_t id, size_t body_bytes = 10) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_event()->mutable_http_request()->set_body(std::string(body_bytes, 'b'));
  return envelope;
}

// What the queue charges for one envelope: its encoding plus the repeated field's prefix.
size_t Charge(const v1::Envelope& envelope) { return envelope.ByteSizeLong() + 6; }

std::vector<uint64_t> Ids(const v1::Frame& frame) {
  std::vector<uint64_t> ids;
  for (const auto& envelope : frame.envelopes()) ids.push_back(envelope.connection_id());
  return ids;
}

TEST(FrameQueueTest, StartsEmpty) {
  FrameQueue queue;
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.queued_bytes(), 0u);
  EXPECT_EQ(queue.queued_frames(), 0u);
  v1::Frame frame;
  EXPECT_FALSE(queue.Pop(&frame));
}

TEST(FrameQueueTest, PacksManyEnvelopesIntoOneFrame) {
  FrameQueue queue;
  size_t expected_bytes = 0;
  for (uint64_t id = 1; id <= 50; ++id) {
    auto envelope = MakeEnvelope(id);
    expected_bytes += Charge(envelope);
    queue.Push(std::move(envelope));
  }
  EXPECT_FALSE(queue.empty());
  EXPECT_EQ(queue.queued_frames(), 1u);
  EXPECT_EQ(queue.queued_bytes(), expected_bytes);

  v1::Frame frame;
  ASSERT_TRUE(queue.Pop(&frame));
  ASSERT_EQ(frame.envelopes_size(), 50);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(frame.envelopes(i).connection_id(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(frame.envelopes(i).event().http_request().body(), std::string(10, 'b'));
  }
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.queued_bytes(), 0u);
  EXPECT_FALSE(queue.Pop(&frame));
}

TEST(FrameQueueTest, SplitsAtMaxFrameBytes) {
  const size_t one = Charge(MakeEnvelope(1));
  FrameQueue queue(3 * one);  // exactly three envelopes fit
  for (uint64_t id = 1; id <= 7; ++id) queue.Push(MakeEnvelope(id));
  EXPECT_EQ(queue.queued_frames(), 3u);
  EXPECT_EQ(queue.queued_bytes(), 7 * one);

  v1::Frame frame;
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(queue.queued_bytes(), 4 * one);
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{4, 5, 6}));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{7}));
  EXPECT_EQ(queue.queued_bytes(), 0u);
  EXPECT_TRUE(queue.empty());
}

TEST(FrameQueueTest, NoFrameExceedsTheLimitWhenEnvelopesFit) {
  const size_t limit = 1000;
  FrameQueue queue(limit);
  for (uint64_t id = 1; id <= 200; ++id) queue.Push(MakeEnvelope(id, id % 37));
  v1::Frame frame;
  uint64_t next = 1;
  while (queue.Pop(&frame)) {
    EXPECT_LE(frame.ByteSizeLong(), limit);
    EXPECT_GT(frame.envelopes_size(), 0);
    for (const auto& envelope : frame.envelopes()) EXPECT_EQ(envelope.connection_id(), next++);
  }
  EXPECT_EQ(next, 201u);
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(FrameQueueTest, OversizeEnvelopeGetsAFrameOfItsOwn) {
  const size_t one = Charge(MakeEnvelope(1));
  FrameQueue queue(4 * one);
  queue.Push(MakeEnvelope(1));
  queue.Push(MakeEnvelope(2, 10 * one));  // larger than a whole frame
  queue.Push(MakeEnvelope(3));
  queue.Push(MakeEnvelope(4));
  EXPECT_EQ(queue.queued_frames(), 3u);

  v1::Frame frame;
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{1}));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{2}));
  EXPECT_EQ(frame.envelopes(0).event().http_request().body().size(), 10 * one);
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{3, 4}));
  EXPECT_FALSE(queue.Pop(&frame));
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(FrameQueueTest, OversizeEnvelopeFirstInAnEmptyQueue) {
  FrameQueue queue(16);
  queue.Push(MakeEnvelope(1, 100));
  queue.Push(MakeEnvelope(2, 100));
  EXPECT_EQ(queue.queued_frames(), 2u);
  v1::Frame frame;
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{1}));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{2}));
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(FrameQueueTest, PushAfterPopKeepsFifoOrder) {
  const size_t one = Charge(MakeEnvelope(1));
  FrameQueue queue(2 * one);
  queue.Push(MakeEnvelope(1));
  queue.Push(MakeEnvelope(2));
  queue.Push(MakeEnvelope(3));
  v1::Frame frame;
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{1, 2}));
  queue.Push(MakeEnvelope(4));
  queue.Push(MakeEnvelope(5));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{3, 4}));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{5}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(FrameQueueTest, PopReplacesTheOutputFrame) {
  FrameQueue queue;
  v1::Frame frame;
  frame.mutable_heartbeat();
  *frame.add_envelopes() = MakeEnvelope(99);
  queue.Push(MakeEnvelope(1));
  ASSERT_TRUE(queue.Pop(&frame));
  EXPECT_FALSE(frame.has_heartbeat());
  EXPECT_EQ(Ids(frame), (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace sluice
