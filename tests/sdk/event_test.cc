#include "sluice/event.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

TEST(ScopeHeaderTest, FirstValueOfAName) {
  Scope scope;
  scope.headers = {{"host", "example.com"}, {"x-a", "1"}, {"cookie", "c"}, {"x-a", "2"}};
  ASSERT_TRUE(scope.Header("x-a").has_value());
  EXPECT_EQ(*scope.Header("x-a"), "1");
  EXPECT_EQ(*scope.Header("host"), "example.com");
  EXPECT_EQ(*scope.Header("cookie"), "c");
}

TEST(ScopeHeaderTest, MissingName) {
  Scope scope;
  EXPECT_FALSE(scope.Header("host").has_value());
  scope.headers = {{"host", "h"}};
  EXPECT_FALSE(scope.Header("hos").has_value());
  EXPECT_FALSE(scope.Header("hostx").has_value());
  EXPECT_FALSE(scope.Header("").has_value());
}

TEST(ScopeHeaderTest, EmptyValueIsPresent) {
  Scope scope;
  scope.headers = {{"x-empty", ""}};
  ASSERT_TRUE(scope.Header("x-empty").has_value());
  EXPECT_EQ(*scope.Header("x-empty"), "");
}

TEST(ScopeParamTest, CapturedParameters) {
  Scope scope;
  scope.url_route = {{"room", "lobby"}, {"user", "ann"}};
  ASSERT_TRUE(scope.Param("room").has_value());
  EXPECT_EQ(*scope.Param("room"), "lobby");
  EXPECT_EQ(*scope.Param("user"), "ann");
  EXPECT_FALSE(scope.Param("id").has_value());
  EXPECT_FALSE(Scope().Param("room").has_value());
}

TEST(ScopeQueryTest, DecodesValues) {
  Scope scope;
  scope.query_string = "a=1&b=hello+world&c=%41%42%2B&d=x%20y";
  EXPECT_EQ(scope.Query("a"), "1");
  EXPECT_EQ(scope.Query("b"), "hello world");
  EXPECT_EQ(scope.Query("c"), "AB+");
  EXPECT_EQ(scope.Query("d"), "x y");
}

TEST(ScopeQueryTest, FirstOfRepeatedKeys) {
  Scope scope;
  scope.query_string = "k=first&x=1&k=second";
  EXPECT_EQ(scope.Query("k"), "first");
}

TEST(ScopeQueryTest, KeysAreDecodedToo) {
  Scope scope;
  scope.query_string = "first+name=Ann&last%20name=Lee&%6B=v";
  EXPECT_EQ(scope.Query("first name"), "Ann");
  EXPECT_EQ(scope.Query("last name"), "Lee");
  EXPECT_EQ(scope.Query("k"), "v");
  EXPECT_FALSE(scope.Query("first+name").has_value());
}

TEST(ScopeQueryTest, EmptyAndValuelessParameters) {
  Scope scope;
  scope.query_string = "&flag&empty=&&v=1=2";
  ASSERT_TRUE(scope.Query("flag").has_value());
  EXPECT_EQ(*scope.Query("flag"), "");
  ASSERT_TRUE(scope.Query("empty").has_value());
  EXPECT_EQ(*scope.Query("empty"), "");
  EXPECT_EQ(scope.Query("v"), "1=2");
}

TEST(ScopeQueryTest, MissingKeys) {
  Scope scope;
  EXPECT_FALSE(scope.Query("a").has_value());
  scope.query_string = "ab=1&b=2";
  EXPECT_FALSE(scope.Query("a").has_value());
  EXPECT_FALSE(scope.Query("B").has_value());
  EXPECT_FALSE(scope.Query("1").has_value());
}

TEST(ScopeQueryTest, MalformedKeyDoesNotHideLaterParameters) {
  Scope scope;
  scope.query_string = "%zz=1&k=2";
  EXPECT_EQ(scope.Query("k"), "2");
}

TEST(TypeNameTest, EveryKind) {
  EXPECT_EQ(TypeName(HttpRequest{}), "http.request");
  EXPECT_EQ(TypeName(HttpDisconnect{}), "http.disconnect");
  EXPECT_EQ(TypeName(HttpResponseStart{}), "http.response.start");
  EXPECT_EQ(TypeName(HttpResponseBody{}), "http.response.body");
  EXPECT_EQ(TypeName(WebSocketConnect{}), "websocket.connect");
  EXPECT_EQ(TypeName(WebSocketAccept{}), "websocket.accept");
  EXPECT_EQ(TypeName(WebSocketReceive{}), "websocket.receive");
  EXPECT_EQ(TypeName(WebSocketSend{}), "websocket.send");
  EXPECT_EQ(TypeName(WebSocketClose{}), "websocket.close");
  EXPECT_EQ(TypeName(WebSocketDisconnect{}), "websocket.disconnect");
}

TEST(EventDefaultsTest, AsgiDefaults) {
  EXPECT_EQ(HttpResponseStart{}.status, 200);
  EXPECT_EQ(WebSocketClose{}.code, 1000);
  EXPECT_EQ(WebSocketDisconnect{}.code, 1005);
  EXPECT_FALSE(WebSocketSend{}.binary);
  EXPECT_FALSE(HttpRequest{}.more_body);
}

}  // namespace
}  // namespace sluice
