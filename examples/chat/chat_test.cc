// The chat consumer, tested in-process with sluice's communicators: no sockets, no gateway.
#include "chat.h"

#include <gtest/gtest.h>

#include "sluice/testing.h"

namespace {

using sluice::testing::WebsocketCommunicator;

TEST(Chat, RefusesAConnectionWithoutAValidToken) {
  auto app = chat::MakeApp();
  WebsocketCommunicator none(*app, "/ws/chat/lobby");
  EXPECT_FALSE(none.Connect().accepted);
  WebsocketCommunicator wrong(*app, "/ws/chat/lobby?token=nope");
  EXPECT_FALSE(wrong.Connect().accepted);
}

TEST(Chat, EveryoneInTheRoomGetsEveryMessageWithItsSender) {
  auto app = chat::MakeApp();
  WebsocketCommunicator alice(*app, "/ws/chat/lobby?token=alice-token");
  WebsocketCommunicator bob(*app, "/ws/chat/lobby", {{"Cookie", "token=bob-token"}});
  WebsocketCommunicator elsewhere(*app, "/ws/chat/kitchen?token=bob-token");
  ASSERT_TRUE(alice.Connect().accepted);
  ASSERT_TRUE(bob.Connect().accepted);
  ASSERT_TRUE(elsewhere.Connect().accepted);
  alice.SendText("hello");
  EXPECT_EQ(alice.ReceiveText(), "alice: hello");
  EXPECT_EQ(bob.ReceiveText(), "alice: hello");
  bob.SendText("hi alice");
  EXPECT_EQ(alice.ReceiveText(), "bob: hi alice");
  EXPECT_EQ(bob.ReceiveText(), "bob: hi alice");
  EXPECT_TRUE(elsewhere.ReceiveNothing());
  alice.Disconnect();
  bob.Disconnect();
}

TEST(Chat, ARoomThatIsNotASlugIsNotRouted) {
  auto app = chat::MakeApp();
  WebsocketCommunicator ws(*app, "/ws/chat/no%20room?token=alice-token");
  EXPECT_FALSE(ws.Connect().accepted);
}

}  // namespace
