#include "common/outbox.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

v1::Envelope Event(uint64_t id, std::string data) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.add_events()->mutable_websocket_send()->set_data(std::move(data));
  return envelope;
}

v1::Envelope Credit(uint64_t id, uint32_t events, uint64_t bytes) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_credit()->set_events(events);
  envelope.mutable_credit()->set_bytes(bytes);
  return envelope;
}

v1::Envelope Close(uint64_t id) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_close()->set_reason(v1::Close::REASON_DONE);
  return envelope;
}

std::vector<v1::Frame> TakeAll(Outbox& outbox) {
  size_t bytes = 0;
  return outbox.Take(&bytes);
}

TEST(OutboxTest, FirstAddAsksForAFlushLaterOnesDoNot) {
  Outbox outbox;
  EXPECT_TRUE(outbox.empty());
  EXPECT_TRUE(outbox.Add(Event(1, "a")));
  EXPECT_FALSE(outbox.Add(Event(2, "b")));
  EXPECT_FALSE(outbox.empty());
  auto frames = TakeAll(outbox);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].envelopes_size(), 2);
  EXPECT_TRUE(outbox.empty());
  EXPECT_TRUE(outbox.Add(Event(3, "c")));  // empty again: a new flush is due
}

// A response's start, body and close, sent one after another, leave as one envelope.
TEST(OutboxTest, ConsecutiveEnvelopesOfOneConnectionMerge) {
  Outbox outbox;
  v1::Envelope start;
  start.set_connection_id(7);
  start.add_events()->mutable_http_response_start()->set_status(200);
  outbox.Add(std::move(start));
  v1::Envelope body;
  body.set_connection_id(7);
  body.add_events()->mutable_http_response_body()->set_body("hello");
  outbox.Add(std::move(body));
  outbox.Add(Credit(7, 1, 10));
  outbox.Add(Credit(7, 2, 20));
  outbox.Add(Close(7));
  auto frames = TakeAll(outbox);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].envelopes_size(), 1);
  const v1::Envelope& merged = frames[0].envelopes(0);
  EXPECT_EQ(merged.connection_id(), 7u);
  ASSERT_EQ(merged.events_size(), 2);
  EXPECT_EQ(merged.events(0).http_response_start().status(), 200u);
  EXPECT_EQ(merged.events(1).http_response_body().body(), "hello");
  EXPECT_EQ(merged.credit().events(), 3u);
  EXPECT_EQ(merged.credit().bytes(), 30u);
  EXPECT_TRUE(merged.has_close());
}

TEST(OutboxTest, NothingMergesAfterAClose) {
  Outbox outbox;
  outbox.Add(Close(7));
  outbox.Add(Event(7, "late"));
  auto frames = TakeAll(outbox);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].envelopes_size(), 2);
}

TEST(OutboxTest, InterleavedConnectionsKeepTheirOrder) {
  Outbox outbox;
  outbox.Add(Event(1, "a1"));
  outbox.Add(Event(2, "b1"));
  outbox.Add(Event(1, "a2"));
  auto frames = TakeAll(outbox);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].envelopes_size(), 3);
  EXPECT_EQ(frames[0].envelopes(0).events(0).websocket_send().data(), "a1");
  EXPECT_EQ(frames[0].envelopes(1).events(0).websocket_send().data(), "b1");
  EXPECT_EQ(frames[0].envelopes(2).events(0).websocket_send().data(), "a2");
}

TEST(OutboxTest, FramesAreCutNearTheLimit) {
  const size_t one = EstimateBytes(Event(1, std::string(100, 'x')));
  Outbox outbox(2 * one);
  for (uint64_t id = 1; id <= 5; ++id) outbox.Add(Event(id, std::string(100, 'x')));
  size_t bytes = 0;
  auto frames = outbox.Take(&bytes);
  EXPECT_EQ(bytes, 5 * one);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].envelopes_size(), 2);
  EXPECT_EQ(frames[1].envelopes_size(), 2);
  EXPECT_EQ(frames[2].envelopes_size(), 1);
  EXPECT_EQ(frames[2].envelopes(0).connection_id(), 5u);
}

TEST(OutboxTest, EstimateGrowsWithThePayload) {
  EXPECT_LT(EstimateBytes(Event(1, "")), EstimateBytes(Event(1, std::string(1000, 'x'))));
  EXPECT_GE(EstimateBytes(Event(1, std::string(1000, 'x'))), 1000u);
  EXPECT_GE(EstimateBytes(Event(1, std::string(1000, 'x'))),
            Event(1, std::string(1000, 'x')).ByteSizeLong());
}

TEST(OutboxTest, MoveEnvelopesKeepsOrderAndEmptiesTheSource) {
  v1::Frame to;
  *to.add_envelopes() = Event(1, "a");
  v1::Frame from;
  *from.add_envelopes() = Event(2, "b");
  *from.add_envelopes() = Event(3, "c");
  MoveEnvelopes(from, to);
  EXPECT_EQ(from.envelopes_size(), 0);
  ASSERT_EQ(to.envelopes_size(), 3);
  EXPECT_EQ(to.envelopes(2).connection_id(), 3u);
}

}  // namespace
}  // namespace sluice
