#include "common/credit.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

v1::Window MakeWindow(uint32_t events, uint64_t bytes) {
  v1::Window window;
  window.set_events(events);
  window.set_bytes(bytes);
  return window;
}

TEST(SendCreditTest, StartsWithTheInitialWindow) {
  const SendCredit credit(MakeWindow(4, 100));
  EXPECT_EQ(credit.events(), 4);
  EXPECT_EQ(credit.bytes(), 100);
  EXPECT_TRUE(credit.CanSend());
}

TEST(SendCreditTest, CannotSendWithoutEvents) {
  const SendCredit credit(MakeWindow(0, 100));
  EXPECT_FALSE(credit.CanSend());
}

TEST(SendCreditTest, CannotSendWithoutBytes) {
  const SendCredit credit(MakeWindow(5, 0));
  EXPECT_FALSE(credit.CanSend());
}

TEST(SendCreditTest, SpendTakesOneEventAndItsBytes) {
  SendCredit credit(MakeWindow(3, 100));
  credit.Spend(30);
  EXPECT_EQ(credit.events(), 2);
  EXPECT_EQ(credit.bytes(), 70);
  EXPECT_TRUE(credit.CanSend());
}

TEST(SendCreditTest, RunningOutOfEventsStopsSending) {
  SendCredit credit(MakeWindow(2, 1000));
  credit.Spend(0);
  EXPECT_TRUE(credit.CanSend());
  credit.Spend(0);
  EXPECT_EQ(credit.events(), 0);
  EXPECT_FALSE(credit.CanSend());
}

TEST(SendCreditTest, OneEventMayOvershootTheByteCredit) {
  SendCredit credit(MakeWindow(10, 100));
  credit.Spend(90);
  ASSERT_TRUE(credit.CanSend());  // 10 bytes left: one more event of any size may go
  credit.Spend(500);
  EXPECT_EQ(credit.bytes(), -490);
  EXPECT_FALSE(credit.CanSend());
}

TEST(SendCreditTest, ExactlyZeroBytesStopsSending) {
  SendCredit credit(MakeWindow(10, 100));
  credit.Spend(100);
  EXPECT_EQ(credit.bytes(), 0);
  EXPECT_FALSE(credit.CanSend());
}

TEST(SendCreditTest, GrantRestoresCredit) {
  SendCredit credit(MakeWindow(2, 100));
  credit.Spend(150);
  credit.Spend(0);
  ASSERT_FALSE(credit.CanSend());
  credit.Grant(MakeWindow(1, 10));
  EXPECT_EQ(credit.events(), 1);
  EXPECT_EQ(credit.bytes(), -40);
  EXPECT_FALSE(credit.CanSend());  // bytes still below zero
  credit.Grant(MakeWindow(1, 150));
  EXPECT_EQ(credit.events(), 2);
  EXPECT_EQ(credit.bytes(), 110);
  EXPECT_TRUE(credit.CanSend());
}

TEST(ReceiveWindowTest, AcceptsWhatTheSenderMaySend) {
  ReceiveWindow window(MakeWindow(3, 100));
  EXPECT_TRUE(window.OnReceived(10));
  EXPECT_TRUE(window.OnReceived(10));
  EXPECT_TRUE(window.OnReceived(10));
}

TEST(ReceiveWindowTest, DetectsAnEventOverrun) {
  ReceiveWindow window(MakeWindow(2, 1000));
  EXPECT_TRUE(window.OnReceived(1));
  EXPECT_TRUE(window.OnReceived(1));
  EXPECT_FALSE(window.OnReceived(1));
}

TEST(ReceiveWindowTest, AllowsOneOvershootThenDetectsAByteOverrun) {
  ReceiveWindow window(MakeWindow(10, 100));
  EXPECT_TRUE(window.OnReceived(99));
  EXPECT_TRUE(window.OnReceived(1000));  // 1 byte of credit left: allowed to overshoot
  EXPECT_FALSE(window.OnReceived(0));
}

TEST(ReceiveWindowTest, NoGrantBeforeHalfTheEventsAreConsumed) {
  ReceiveWindow window(MakeWindow(10, 1 << 20));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(window.OnReceived(1));
    EXPECT_FALSE(window.OnConsumed(1).has_value()) << "consumed " << i + 1;
  }
  ASSERT_TRUE(window.OnReceived(1));
  const auto grant = window.OnConsumed(1);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->events(), 5u);
  EXPECT_EQ(grant->bytes(), 5u);
}

TEST(ReceiveWindowTest, GrantsOnceHalfTheBytesAreConsumed) {
  ReceiveWindow window(MakeWindow(100, 1000));
  ASSERT_TRUE(window.OnReceived(300));
  EXPECT_FALSE(window.OnConsumed(300).has_value());
  ASSERT_TRUE(window.OnReceived(199));
  EXPECT_FALSE(window.OnConsumed(199).has_value());  // 499 < 500
  ASSERT_TRUE(window.OnReceived(1));
  const auto grant = window.OnConsumed(1);  // 500: half
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->events(), 3u);
  EXPECT_EQ(grant->bytes(), 500u);
}

TEST(ReceiveWindowTest, CountsRestartAfterAGrant) {
  ReceiveWindow window(MakeWindow(4, 1 << 20));
  ASSERT_TRUE(window.OnReceived(7));
  EXPECT_FALSE(window.OnConsumed(7).has_value());
  ASSERT_TRUE(window.OnReceived(8));
  auto grant = window.OnConsumed(8);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->events(), 2u);
  EXPECT_EQ(grant->bytes(), 15u);

  ASSERT_TRUE(window.OnReceived(1));
  EXPECT_FALSE(window.OnConsumed(1).has_value());
  ASSERT_TRUE(window.OnReceived(2));
  grant = window.OnConsumed(2);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->events(), 2u);
  EXPECT_EQ(grant->bytes(), 3u);
}

TEST(ReceiveWindowTest, GrantRestoresTheSendersCreditAsSeenByTheReceiver) {
  ReceiveWindow window(MakeWindow(2, 1000));
  ASSERT_TRUE(window.OnReceived(1));
  ASSERT_TRUE(window.OnReceived(1));
  ASSERT_FALSE(window.OnReceived(1));             // overrun while nothing was consumed
  ASSERT_TRUE(window.OnConsumed(1).has_value());  // 1 of 2 events: half
  EXPECT_TRUE(window.OnReceived(1));
  EXPECT_FALSE(window.OnReceived(1));
}

TEST(ReceiveWindowTest, PeerBlockedOnceItsCreditIsSpent) {
  ReceiveWindow window(MakeWindow(2, 1000));
  EXPECT_FALSE(window.peer_blocked());
  ASSERT_TRUE(window.OnReceived(10));
  EXPECT_FALSE(window.peer_blocked());
  ASSERT_TRUE(window.OnReceived(10));
  EXPECT_TRUE(window.peer_blocked());
  ASSERT_TRUE(window.OnConsumed(10).has_value());
  EXPECT_FALSE(window.peer_blocked());
}

TEST(EventBytesTest, CountsThePayloadOfEachKind) {
  v1::Event event;
  event.mutable_http_request()->set_body("hello");
  EXPECT_EQ(EventBytes(event), 5u);

  event.Clear();
  event.mutable_http_response_body()->set_body(std::string(1234, 'x'));
  EXPECT_EQ(EventBytes(event), 1234u);

  event.Clear();
  event.mutable_websocket_receive()->set_data("abc");
  EXPECT_EQ(EventBytes(event), 3u);

  event.Clear();
  event.mutable_websocket_send()->set_data(std::string(70000, '\0'));
  event.mutable_websocket_send()->set_binary(true);
  EXPECT_EQ(EventBytes(event), 70000u);
}

TEST(EventBytesTest, EventsWithoutPayloadCountZero) {
  v1::Event event;
  EXPECT_EQ(EventBytes(event), 0u);
  event.mutable_http_disconnect();
  EXPECT_EQ(EventBytes(event), 0u);

  event.Clear();
  auto* start = event.mutable_http_response_start();
  start->set_status(200);
  auto* header = start->add_headers();
  header->set_name("content-type");
  header->set_value("text/plain");
  EXPECT_EQ(EventBytes(event), 0u);

  event.Clear();
  event.mutable_websocket_connect();
  EXPECT_EQ(EventBytes(event), 0u);

  event.Clear();
  event.mutable_websocket_accept()->set_subprotocol("chat");
  EXPECT_EQ(EventBytes(event), 0u);

  event.Clear();
  event.mutable_websocket_close()->set_reason("bye bye");
  EXPECT_EQ(EventBytes(event), 0u);

  event.Clear();
  event.mutable_websocket_disconnect()->set_reason("gone");
  EXPECT_EQ(EventBytes(event), 0u);
}

TEST(SpendsCreditTest, EveryKindButDisconnectsSpends) {
  v1::Event event;
  event.mutable_http_request();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_http_response_start();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_http_response_body();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_websocket_connect();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_websocket_accept();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_websocket_receive();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_websocket_send();
  EXPECT_TRUE(SpendsCredit(event));
  event.mutable_websocket_close();
  EXPECT_TRUE(SpendsCredit(event));
}

TEST(SpendsCreditTest, DisconnectsSpendNothing) {
  v1::Event event;
  event.mutable_http_disconnect();
  EXPECT_FALSE(SpendsCredit(event));
  event.mutable_websocket_disconnect()->set_code(1001);
  EXPECT_FALSE(SpendsCredit(event));
}

}  // namespace
}  // namespace sluice
