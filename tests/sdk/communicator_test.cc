// The communicators (sluice/testing.h) driving the demo's real consumers in-process: the
// way a user tests a consumer without sockets.
#include <gtest/gtest.h>

#include <string>

#include "demo/demo_app.h"
#include "sluice/sluice.h"
#include "sluice/testing.h"

namespace sluice {
namespace {

using testing::HttpCommunicator;
using testing::Timeout;
using testing::WebsocketCommunicator;

class CommunicatorTest : public ::testing::Test {
 protected:
  std::shared_ptr<Router> app = demo::MakeApp();
};

TEST_F(CommunicatorTest, WebSocketEchoWithASubprotocol) {
  WebsocketCommunicator ws(*app, "/ws/echo", {}, {"other", "echo.v2"});
  const auto connected = ws.Connect();
  ASSERT_TRUE(connected.accepted);
  EXPECT_EQ(connected.subprotocol, "echo.v2");
  ws.SendText("héllo");
  EXPECT_EQ(ws.ReceiveText(), "héllo");
  ws.SendBinary(std::string("\0\1", 2));
  EXPECT_EQ(ws.ReceiveBinary(), std::string("\0\1", 2));
  EXPECT_TRUE(ws.ReceiveNothing());
  ws.Disconnect();
  EXPECT_TRUE(ws.finished());
}

TEST_F(CommunicatorTest, ADeniedHandshake) {
  WebsocketCommunicator ws(*app, "/ws/deny");
  const auto connected = ws.Connect();
  EXPECT_FALSE(connected.accepted);
  EXPECT_EQ(connected.close_code, 1000);
}

TEST_F(CommunicatorTest, WaitsAreBoundedByTheirTimeouts) {
  WebsocketCommunicator ws(*app, "/ws/echo");
  ASSERT_TRUE(ws.Connect().accepted);
  EXPECT_THROW(ws.ReceiveText(std::chrono::milliseconds(50)), Timeout);
  EXPECT_THROW(ws.Wait(std::chrono::milliseconds(50)), Timeout);  // it is still running
}

TEST_F(CommunicatorTest, AConsumersExceptionReachesTheTest) {
  WebsocketCommunicator ws(*app, "/ws/error");
  ASSERT_TRUE(ws.Connect().accepted);
  ws.SendText("boom");
  EXPECT_THROW(ws.Wait(), std::runtime_error);
}

TEST_F(CommunicatorTest, ChatThroughTheInMemoryLayer) {
  WebsocketCommunicator alice(*app, "/ws/chat/lobby");
  WebsocketCommunicator bob(*app, "/ws/chat/lobby");
  WebsocketCommunicator elsewhere(*app, "/ws/chat/other");
  ASSERT_TRUE(alice.Connect().accepted);
  ASSERT_TRUE(bob.Connect().accepted);
  ASSERT_TRUE(elsewhere.Connect().accepted);
  alice.SendText("hi bob");
  EXPECT_EQ(alice.ReceiveText(), "hi bob");
  EXPECT_EQ(bob.ReceiveText(), "hi bob");
  // From outside, as a Django process or a test would.
  testing::LayerGroupSend("chat_lobby", Message{{"type", "chat.message"}, {"text", "news"}});
  EXPECT_EQ(alice.ReceiveText(), "news");
  EXPECT_EQ(bob.ReceiveText(), "news");
  EXPECT_TRUE(elsewhere.ReceiveNothing());
  bob.Disconnect();
  alice.SendText("bob left");
  EXPECT_EQ(alice.ReceiveText(), "bob left");
  alice.Disconnect();
}

TEST_F(CommunicatorTest, AChatTextTheLayerRefusesIsAnsweredToItsSenderWhoStays) {
  WebsocketCommunicator alice(*app, "/ws/chat/refused");
  WebsocketCommunicator bob(*app, "/ws/chat/refused");
  ASSERT_TRUE(alice.Connect().accepted);
  ASSERT_TRUE(bob.Connect().accepted);
  // Over the layer's message limit: GroupSend throws MessageTooLarge (a LayerError, as
  // LayerUnavailable is while Redis is away).
  alice.SendText(std::string(kMaxLayerMessageBytes, 'x'));
  EXPECT_TRUE(alice.ReceiveText().starts_with("not sent: "));
  EXPECT_TRUE(bob.ReceiveNothing());
  alice.SendText("still here");
  EXPECT_EQ(alice.ReceiveText(), "still here");
  EXPECT_EQ(bob.ReceiveText(), "still here");
  alice.Disconnect();
  bob.Disconnect();
}

TEST_F(CommunicatorTest, ASyncConsumerBlocksOnItsPoolThreadNotTheLoop) {
  WebsocketCommunicator sync(*app, "/ws/sync");
  WebsocketCommunicator echo(*app, "/ws/echo");
  ASSERT_TRUE(sync.Connect().accepted);
  ASSERT_TRUE(echo.Connect().accepted);
  sync.SendText("sleep:3000");
  echo.SendText("meanwhile");
  // Well inside the sleep (margin for a slow sanitizer build): the loop was free.
  EXPECT_EQ(echo.ReceiveText(std::chrono::milliseconds(2000)), "meanwhile");
  EXPECT_FALSE(sync.finished());
  EXPECT_EQ(sync.ReceiveText(std::chrono::milliseconds(5000)), "slept:3000");
}

// A consumer that sends without end while the test reads nothing is stopped at the bound,
// and the test sees why.
class Flood final : public WebSocketConsumer {
  Task<void> OnConnect() override {
    co_await Accept();
    for (;;) co_await SendText("x");
  }
};

TEST_F(CommunicatorTest, UnreadOutputIsBounded) {
  Router flood;
  flood.WebSocket("/flood", Make<Flood>());
  WebsocketCommunicator ws(flood, "/flood");
  ws.SendInput(WebSocketConnect{});
  EXPECT_THROW(ws.Wait(std::chrono::milliseconds(10000)), std::length_error);
  size_t held = 0;
  try {
    for (;;) {
      ws.ReceiveOutput(std::chrono::milliseconds(1000));
      ++held;
    }
  } catch (const std::length_error&) {
  }
  EXPECT_EQ(held, testing::ApplicationCommunicator::kMaxUnreadOutput);
}

TEST_F(CommunicatorTest, HttpRequests) {
  HttpCommunicator hello(*app, "GET", "/hello");
  const auto response = hello.GetResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "Hello, world");
  EXPECT_EQ(response.Header("Content-Type"), "text/plain; charset=utf-8");

  HttpCommunicator echo(*app, "POST", "/echo", "some bytes", {{"Content-Type", "text/x-test"}});
  const auto echoed = echo.GetResponse();
  EXPECT_EQ(echoed.status, 200);
  EXPECT_EQ(echoed.body, "some bytes");
  EXPECT_EQ(echoed.Header("content-type"), "text/x-test");

  HttpCommunicator missing(*app, "GET", "/nowhere?x=1");
  EXPECT_EQ(missing.GetResponse().status, 404);
}

}  // namespace
}  // namespace sluice
