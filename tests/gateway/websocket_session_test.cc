#include "gateway/websocket_session.h"

#include <gtest/gtest.h>

#include <string>

#include "common/protocol.h"
#include "gateway/http_session.h"
#include "tests/gateway/session_harness.h"

namespace sluice::gateway {
namespace {

using testing::SessionHarness;
using testing::Window;

constexpr char kUpgrade[] =
    "GET /ws/echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat, echo.v1\r\n\r\n";
// RFC 6455 1.3's example key and its accept value.
constexpr char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A client frame: masked, as RFC 6455 requires.
std::string ClientFrame(uint8_t opcode, std::string_view payload, bool fin = true) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xFF));
  }
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i) frame.push_back(payload[i] ^ mask[i % 4]);
  return frame;
}

std::string CloseCode(uint16_t code) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

// A server frame as the client receives it (unmasked).
std::string ServerFrame(uint8_t opcode, std::string_view payload) {
  std::string frame;
  frame.push_back(static_cast<char>(0x80 | opcode));
  frame.push_back(static_cast<char>(payload.size()));
  frame.append(payload);
  return frame;
}

v1::Envelope Event(uint64_t id, v1::Event event) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  *envelope.add_events() = std::move(event);
  return envelope;
}

v1::Envelope Accept(uint64_t id, std::string subprotocol = "") {
  v1::Event event;
  event.mutable_websocket_accept()->set_subprotocol(std::move(subprotocol));
  return Event(id, std::move(event));
}

v1::Envelope Send(uint64_t id, std::string text) {
  v1::Event event;
  event.mutable_websocket_send()->set_data(std::move(text));
  return Event(id, std::move(event));
}

class WebSocketSessionTest : public ::testing::Test {
 protected:
  explicit WebSocketSessionTest(Options options = Options(),
                                v1::Window worker_window = DefaultWindow())
      : h_(std::move(options), std::move(worker_window)) {}

  // The upgrade arrives on an HTTP session, which hands over to a WebSocket session.
  uint64_t Connect() {
    std::make_shared<HttpSession>(h_.shard(), h_.context(), h_.Connect(), false)->Start();
    h_.ClientSends(kUpgrade);
    auto sent = h_.TakeSent();
    EXPECT_EQ(sent.size(), 1u);
    if (sent.empty()) return 0;
    EXPECT_TRUE(sent[0].has_open());
    EXPECT_EQ(sent[0].open().scope().type(), v1::Scope::TYPE_WEBSOCKET);
    EXPECT_EQ(sent[0].open().scope().subprotocols_size(), 2);
    EXPECT_TRUE(sent[0].events(0).has_websocket_connect());
    return sent[0].connection_id();
  }
  uint64_t ConnectAndAccept() {
    const uint64_t id = Connect();
    h_.WorkerSends({Accept(id, "echo.v1")});
    const std::string reply = h_.ClientReads();
    EXPECT_EQ(reply.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << reply;
    return id;
  }
  // The disconnect code the worker was told, or 0.
  uint32_t DisconnectCode() {
    for (const auto& envelope : h_.TakeSent()) {
      for (const auto& event : envelope.events()) {
        if (event.has_websocket_disconnect()) return event.websocket_disconnect().code();
      }
    }
    return 0;
  }

  SessionHarness h_;
};

TEST_F(WebSocketSessionTest, AcceptCompletesTheHandshakeWithTheChosenSubprotocol) {
  const uint64_t id = Connect();
  EXPECT_TRUE(h_.ClientReads().empty()) << "no answer before the application decides";
  h_.WorkerSends({Accept(id, "echo.v1")});
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(reply.find(std::string("sec-websocket-accept: ") + kAccept + "\r\n"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find("sec-websocket-protocol: echo.v1\r\n"), std::string::npos);
  EXPECT_EQ(h_.metrics().websockets.value(), 1);
}

TEST_F(WebSocketSessionTest, MessagesFlowBothWays) {
  const uint64_t id = ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x1, "hello") + ClientFrame(0x2, std::string("\0\1", 2)));
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].events(0).websocket_receive().data(), "hello");
  EXPECT_FALSE(sent[0].events(0).websocket_receive().binary());
  EXPECT_EQ(sent[1].events(0).websocket_receive().data(), std::string("\0\1", 2));
  EXPECT_TRUE(sent[1].events(0).websocket_receive().binary());
  h_.WorkerSends({Send(id, "back")});
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x1, "back"));
}

TEST_F(WebSocketSessionTest, FragmentedMessageArrivesWhole) {
  ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x1, "hel", false) + ClientFrame(0x9, "p") +
                 ClientFrame(0x0, "lo", true));
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].events(0).websocket_receive().data(), "hello");
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0xA, "p")) << "the ping in between is answered";
}

TEST_F(WebSocketSessionTest, ApplicationClosingBeforeAcceptIsA403) {
  const uint64_t id = Connect();
  v1::Event close;
  close.mutable_websocket_close()->set_code(1000);
  h_.WorkerSends({Event(id, std::move(close))});
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().websocket_denied.value(), 1u);
}

TEST_F(WebSocketSessionTest, NoAnswerWithinTheHandshakeTimeoutIsA504) {
  Connect();
  h_.AdvanceAndSweep(Options().ws_handshake_timeout.count() + 0.5);
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 504 ", 0), 0u);
  EXPECT_EQ(h_.metrics().limit_ws_handshake_timeout.value(), 1u);
  EXPECT_EQ(DisconnectCode(), 1006u);
}

TEST_F(WebSocketSessionTest, WrongVersionIsA426) {
  std::make_shared<HttpSession>(h_.shard(), h_.context(), h_.Connect(), false)->Start();
  std::string request = kUpgrade;
  request.replace(request.find("Version: 13"), 11, "Version: 8");
  h_.ClientSends(request);
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 426 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("sec-websocket-version: 13\r\n"), std::string::npos);
  EXPECT_TRUE(h_.TakeSent().empty());
}

TEST_F(WebSocketSessionTest, ClientCloseIsEchoedAndReportedWithItsCode) {
  ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x8, CloseCode(4001) + "bye"));
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(4001)));
  EXPECT_EQ(DisconnectCode(), 4001u);
  EXPECT_TRUE(h_.transport().shut_down);
}

// RFC 6455 7.4: codes of 5000 and above are not defined; the connection fails with 1002.
TEST_F(WebSocketSessionTest, CloseCodeOf5000IsAnsweredWith1002) {
  ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x8, CloseCode(5000)));
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1002)));
  EXPECT_EQ(DisconnectCode(), 1002u);
  EXPECT_EQ(h_.metrics().limit_ws_protocol_error.value(), 1u);
}

TEST_F(WebSocketSessionTest, InvalidUtf8TextIs1007) {
  ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x1, "ok \xC0\xAF"));
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1007)));
  EXPECT_EQ(DisconnectCode(), 1007u);
  EXPECT_EQ(h_.metrics().limit_ws_invalid_utf8.value(), 1u);
}

TEST_F(WebSocketSessionTest, MessageOverTheLimitIs1009) {
  Options options;
  options.max_ws_message_bytes = 100;
  SessionHarness h(options);
  std::make_shared<HttpSession>(h.shard(), h.context(), h.Connect(), false)->Start();
  h.ClientSends(kUpgrade);
  const uint64_t id = h.TakeSent()[0].connection_id();
  h.WorkerSends({Accept(id)});
  h.ClientReads();
  h.ClientSends(ClientFrame(0x2, std::string(101, 'x')));
  EXPECT_EQ(h.ClientReads(), ServerFrame(0x8, CloseCode(1009)));
  EXPECT_EQ(h.metrics().limit_ws_message_too_big.value(), 1u);
}

TEST_F(WebSocketSessionTest, IdleClientIsPingedThenClosed) {
  ConnectAndAccept();
  const double half = Options().ws_idle_timeout.count() / 2.0;
  h_.AdvanceAndSweep(half + 0.5);
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x9, ""));
  EXPECT_FALSE(h_.transport().closed);
  h_.AdvanceAndSweep(half + 0.5);
  EXPECT_TRUE(h_.transport().closed);
  EXPECT_EQ(h_.metrics().limit_ws_ping_timeout.value(), 1u);
  EXPECT_EQ(DisconnectCode(), 1006u);
}

TEST_F(WebSocketSessionTest, ClientThatAnswersPingsStaysOpen) {
  ConnectAndAccept();
  const double half = Options().ws_idle_timeout.count() / 2.0;
  for (int i = 0; i < 4; ++i) {
    h_.AdvanceAndSweep(half + 0.5);
    EXPECT_EQ(h_.ClientReads(), ServerFrame(0x9, ""));
    h_.ClientSends(ClientFrame(0xA, ""));
  }
  EXPECT_FALSE(h_.transport().closed);
}

TEST_F(WebSocketSessionTest, ApplicationCloseSendsTheCloseFrameAndTellsTheApplication) {
  const uint64_t id = ConnectAndAccept();
  v1::Event close;
  close.mutable_websocket_close()->set_code(4002);
  close.mutable_websocket_close()->set_reason("done");
  h_.WorkerSends({Send(id, "last"), Event(id, std::move(close))});
  EXPECT_EQ(h_.ClientReads(),
            ServerFrame(0x1, "last") + ServerFrame(0x8, CloseCode(4002) + "done"));
  EXPECT_EQ(DisconnectCode(), 4002u);
  EXPECT_TRUE(h_.transport().shut_down);
}

// The numbered events a connection's worker received, as (number, text).
std::vector<std::pair<uint64_t, std::string>> Numbered(const std::vector<v1::Envelope>& sent) {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& envelope : sent) {
    uint64_t seq = envelope.seq();
    for (const auto& event : envelope.events()) {
      if (event.has_websocket_receive()) out.emplace_back(seq++, event.websocket_receive().data());
    }
  }
  return out;
}

using NumberedTexts = std::vector<std::pair<uint64_t, std::string>>;

// The worker is lost: the connection moves. The new worker gets the scope again,
// websocket.resume with the state saved last, then the messages not acknowledged, with their
// numbers; the client sees nothing; the old instance's late output is ignored.
TEST_F(WebSocketSessionTest, LinkLostMovesItWithItsStateAndUnacknowledgedMessages) {
  const uint64_t id = ConnectAndAccept();
  h_.TakeSent();
  h_.ClientSends(ClientFrame(0x1, "one") + ClientFrame(0x1, "two") + ClientFrame(0x1, "three"));
  EXPECT_EQ(Numbered(h_.TakeSent()), (NumberedTexts{{1, "one"}, {2, "two"}, {3, "three"}}));
  v1::Envelope saved;
  saved.set_connection_id(id);
  saved.mutable_state()->set_data("count=1");
  saved.set_acked(1);
  h_.WorkerSends({saved});
  EXPECT_EQ(h_.metrics().state_bytes.value(), 7);

  h_.LinkLostAndAnotherWorker();
  auto sent = h_.TakeSent();
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent[0].has_open());
  const uint64_t moved = sent[0].connection_id();
  EXPECT_NE(moved, id);
  EXPECT_EQ(sent[0].open().scope().path(), "/ws/echo");
  EXPECT_EQ(sent[0].open().scope().subprotocols_size(), 2);
  ASSERT_TRUE(sent[0].events(0).has_websocket_resume());
  const auto& resume = sent[0].events(0).websocket_resume();
  EXPECT_TRUE(resume.saved());
  EXPECT_EQ(resume.state(), "count=1");
  EXPECT_EQ(resume.moves(), 1u);
  EXPECT_EQ(Numbered(sent), (NumberedTexts{{2, "two"}, {3, "three"}}));
  EXPECT_EQ(h_.ClientReads(), "");
  EXPECT_EQ(h_.metrics().moved.value(), 1u);
  EXPECT_EQ(h_.metrics().replayed.value(), 2u);
  EXPECT_EQ(h_.metrics().worker_lost.value(), 1u);

  h_.WorkerSends({Send(id, "stale"), Send(moved, "hi")});
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x1, "hi"));
  h_.ClientSends(ClientFrame(0x1, "four"));  // the numbering goes on
  EXPECT_EQ(Numbered(h_.TakeSent()), (NumberedTexts{{4, "four"}}));
}

// A draining worker hands the connection back (REASON_MOVED, its acknowledgements with it):
// it moves the same way.
TEST_F(WebSocketSessionTest, AHandBackMovesIt) {
  const uint64_t id = ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x1, "one") + ClientFrame(0x1, "two"));
  h_.TakeSent();
  h_.AnotherWorker();
  v1::Envelope back;
  back.set_connection_id(id);
  back.set_acked(2);
  back.mutable_close()->set_reason(v1::Close::REASON_MOVED);
  h_.WorkerSends({back});
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_open());
  EXPECT_FALSE(sent[0].events(0).websocket_resume().saved());
  EXPECT_TRUE(Numbered(sent).empty());
  EXPECT_EQ(h_.metrics().handed_over.value(), 1u);
  EXPECT_EQ(h_.ClientReads(), "");
}

TEST_F(WebSocketSessionTest, NoWorkerToMoveToClosesWith1012) {
  ConnectAndAccept();
  h_.LinkLostAndAnotherWorker(/*room=*/false);
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1012) + "no worker available"));
  EXPECT_EQ(h_.metrics().move_no_worker.value(), 1u);
}

// A handshake the lost worker had not answered starts again on another worker.
TEST_F(WebSocketSessionTest, AnUnansweredHandshakeConnectsAgainElsewhere) {
  Connect();
  h_.LinkLostAndAnotherWorker();
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].events(0).has_websocket_connect());
  h_.WorkerSends({Accept(sent[0].connection_id(), "echo.v1")});
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
}

// A handshake refused by a worker that filled up or began draining as the Open crossed starts
// again on the next worker; when none has room the client gets 503.
TEST_F(WebSocketSessionTest, ARefusedHandshakeConnectsOnTheNextWorkerOr503) {
  v1::Envelope refused;
  refused.set_connection_id(Connect());
  refused.mutable_close()->set_reason(v1::Close::REASON_REJECTED);
  h_.AnotherWorker();
  h_.WorkerSends({refused});
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_open());
  EXPECT_TRUE(sent[0].events(0).has_websocket_connect());
  EXPECT_EQ(h_.ClientReads(), "");
  h_.picker().full = true;
  refused.set_connection_id(sent[0].connection_id());
  h_.WorkerSends({refused});
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().rejected_no_worker.value(), 1u);
}

// Moving again and again within a minute means the connection takes workers down: 1011.
TEST_F(WebSocketSessionTest, MovingTooOftenClosesWith1011) {
  ConnectAndAccept();
  for (uint32_t i = 0; i < Replay::kMaxMoves; ++i) h_.LinkLostAndAnotherWorker();
  EXPECT_EQ(h_.ClientReads(), "");
  h_.LinkLostAndAnotherWorker();
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1011) + "moved too often"));
  EXPECT_EQ(h_.metrics().move_too_often.value(), 1u);
}

// What a worker says about numbering and state is checked: an acknowledgement of an event
// never sent, or a state over the limit, is a protocol error (1011).
TEST_F(WebSocketSessionTest, BadAcknowledgementsAndOversizedStateAreProtocolErrors) {
  const uint64_t id = ConnectAndAccept();
  h_.ClientSends(ClientFrame(0x1, "one"));
  v1::Envelope ack;
  ack.set_connection_id(id);
  ack.set_acked(2);
  h_.WorkerSends({ack});
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1011) + "application error"));
  EXPECT_EQ(h_.metrics().worker_protocol_errors.value(), 1u);

  SessionHarness h2;
  std::make_shared<HttpSession>(h2.shard(), h2.context(), h2.Connect(), false)->Start();
  h2.ClientSends(kUpgrade);
  const uint64_t id2 = h2.TakeSent()[0].connection_id();
  h2.WorkerSends({Accept(id2, "echo.v1")});
  h2.ClientReads();
  v1::Envelope big;
  big.set_connection_id(id2);
  big.mutable_state()->set_data(std::string(kMaxSavedStateBytes + 1, 'x'));
  h2.WorkerSends({big});
  EXPECT_EQ(h2.ClientReads(), ServerFrame(0x8, CloseCode(1011) + "application error"));
  EXPECT_EQ(h2.metrics().state_bytes.value(), 0);
}

// The drain leaves an open WebSocket be (it may go on until the drain timeout); Retire, at
// the drain timeout, closes it with 1001.
TEST_F(WebSocketSessionTest, DrainKeepsItOpenAndRetireClosesWith1001) {
  ConnectAndAccept();
  h_.shard().ForEachSession([](ClientSession& session) { session.Drain(); });
  EXPECT_EQ(h_.ClientReads(), "");
  h_.shard().ForEachSession([](ClientSession& session) { session.Retire(); });
  EXPECT_EQ(h_.ClientReads(), ServerFrame(0x8, CloseCode(1001) + "gateway shutting down"));
  EXPECT_EQ(DisconnectCode(), 1001u);
}

class WebSocketSmallWindowTest : public WebSocketSessionTest {
 protected:
  WebSocketSmallWindowTest() : WebSocketSessionTest(Options(), Window(2, 1 << 20)) {}
};

// Without credit the gateway takes no more messages from the client (they wait in the
// kernel, or in the session's pending bytes); a grant lets them through in order.
TEST_F(WebSocketSmallWindowTest, ReadingStopsWithoutCreditAndResumesInOrder) {
  const uint64_t id = ConnectAndAccept();  // websocket.connect spent one of the two
  std::string frames;
  for (int i = 0; i < 4; ++i) frames += ClientFrame(0x1, "m" + std::to_string(i));
  h_.ClientSends(frames);
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].events(0).websocket_receive().data(), "m0");
  EXPECT_EQ(h_.metrics().credit_stalls_to_worker.value(), 1u);
  v1::Envelope grant;
  grant.set_connection_id(id);
  grant.mutable_credit()->set_events(3);
  grant.mutable_credit()->set_bytes(100);
  h_.WorkerSends({grant});
  sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sent[i].events(0).websocket_receive().data(), "m" + std::to_string(i + 1));
  }
}

TEST_F(WebSocketSessionTest, WorkerOverrunningItsCreditClosesWith1011) {
  Options options;
  options.receive_window = Window(2, 1 << 20);
  SessionHarness h(options);
  std::make_shared<HttpSession>(h.shard(), h.context(), h.Connect(), false)->Start();
  h.ClientSends(kUpgrade);
  const uint64_t id = h.TakeSent()[0].connection_id();
  // accept + 2 messages = 3 events against a window of 2, before anything is written.
  h.WorkerSends({Accept(id), Send(id, "a"), Send(id, "b")});
  EXPECT_EQ(h.metrics().worker_protocol_errors.value(), 1u);
  const std::string reply = h.ClientReads();
  EXPECT_NE(reply.find(ServerFrame(0x8, CloseCode(1011) + "application error")), std::string::npos);
}

}  // namespace
}  // namespace sluice::gateway
