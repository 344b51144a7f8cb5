#include "gateway/scope.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <string>
#include <utility>
#include <vector>

namespace sluice::gateway {
namespace {

namespace http = boost::beast::http;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

using Pairs = std::vector<std::pair<std::string, std::string>>;

class BuildScopeTest : public ::testing::Test {
 protected:
  BuildScopeTest() {
    request_.method(http::verb::get);
    request_.target("/");
    request_.version(11);
  }

  absl::StatusOr<v1::Scope> Build(bool websocket = false, std::string_view root_path = "") {
    return BuildScope(request_, fields_, websocket, ToAddress(client_), ToAddress(server_),
                      root_path);
  }

  static Pairs Headers(const v1::Scope& scope) {
    Pairs out;
    for (const auto& header : scope.headers()) out.emplace_back(header.name(), header.value());
    return out;
  }

  static std::vector<std::string> Subprotocols(const v1::Scope& scope) {
    return {scope.subprotocols().begin(), scope.subprotocols().end()};
  }

  http::request_header<> request_;
  FieldList fields_;
  tcp::endpoint client_{make_address("192.0.2.10"), 54321};
  tcp::endpoint server_{make_address("127.0.0.1"), 8000};
};

TEST_F(BuildScopeTest, BasicHttpScope) {
  request_.target("/hello");
  const auto scope = Build(false, "/mount");
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->type(), v1::Scope::TYPE_HTTP);
  EXPECT_EQ(scope->http_version(), "1.1");
  EXPECT_EQ(scope->method(), "GET");
  EXPECT_EQ(scope->scheme(), "http");
  EXPECT_EQ(scope->path(), "/hello");
  EXPECT_EQ(scope->raw_path(), "/hello");
  EXPECT_EQ(scope->query_string(), "");
  EXPECT_EQ(scope->root_path(), "/mount");
  EXPECT_EQ(scope->headers_size(), 0);
  EXPECT_EQ(scope->subprotocols_size(), 0);
}

TEST_F(BuildScopeTest, MethodIsUpperCased) {
  request_.method_string("get");
  auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->method(), "GET");

  request_.method_string("Purge-Cache");
  scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->method(), "PURGE-CACHE");

  request_.method(http::verb::post);
  scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->method(), "POST");
}

TEST_F(BuildScopeTest, HttpVersion) {
  request_.version(10);
  auto scope = Build();
  ASSERT_TRUE(scope.ok());
  EXPECT_EQ(scope->http_version(), "1.0");
  request_.version(11);
  scope = Build();
  ASSERT_TRUE(scope.ok());
  EXPECT_EQ(scope->http_version(), "1.1");
}

TEST_F(BuildScopeTest, PathIsPercentDecodedAndRawPathKept) {
  request_.target("/caf%C3%A9/a%20b/%2F+");
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->path(), "/caf\xC3\xA9/a b//+");
  EXPECT_EQ(scope->raw_path(), "/caf%C3%A9/a%20b/%2F+");
}

TEST_F(BuildScopeTest, QueryStringSplitAtTheFirstQuestionMark) {
  request_.target("/search%3F/x?q=a%20b&r=1?s=2");
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->path(), "/search?/x");
  EXPECT_EQ(scope->raw_path(), "/search%3F/x");
  EXPECT_EQ(scope->query_string(), "q=a%20b&r=1?s=2");  // undecoded
}

TEST_F(BuildScopeTest, EmptyQueryString) {
  request_.target("/p?");
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->path(), "/p");
  EXPECT_EQ(scope->raw_path(), "/p");
  EXPECT_EQ(scope->query_string(), "");
}

TEST_F(BuildScopeTest, QueryMayHoldAnything) {
  request_.target("/p?%zz=\xff");
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->query_string(), "%zz=\xff");
}

TEST_F(BuildScopeTest, MalformedEscapeInPathIsAnError) {
  for (const char* target : {"/a%", "/a%2", "/a%zz", "/%G0?x=1"}) {
    request_.target(target);
    const auto scope = Build();
    ASSERT_FALSE(scope.ok()) << target;
    EXPECT_EQ(scope.status().code(), absl::StatusCode::kInvalidArgument) << target;
  }
}

TEST_F(BuildScopeTest, InvalidUtf8PathIsAnError) {
  for (const char* target : {"/%C3", "/%C0%AF", "/%ED%A0%80", "/%FF", "/\xC3(", "/%F4%90%80%80"}) {
    request_.target(target);
    const auto scope = Build();
    ASSERT_FALSE(scope.ok()) << target;
    EXPECT_EQ(scope.status().code(), absl::StatusCode::kInvalidArgument) << target;
  }
}

TEST_F(BuildScopeTest, TargetMustStartWithASlash) {
  for (const char* target : {"", "*", "hello", "http://example.com/x", "?q=1"}) {
    request_.target(target);
    const auto scope = Build();
    ASSERT_FALSE(scope.ok()) << '"' << target << '"';
    EXPECT_EQ(scope.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(BuildScopeTest, HeadersKeepOrderAndDuplicatesWithLowerCasedNames) {
  fields_ = {{"Host", "example.com"}, {"X-Trace", "1"}, {"Accept", "*/*"}, {"x-trace", "2"},
             {"COOKIE", "a=b"},       {"X-TRACE", "3"}, {"X-Empty", ""}};
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(Headers(*scope), (Pairs{{"host", "example.com"},
                                    {"x-trace", "1"},
                                    {"accept", "*/*"},
                                    {"x-trace", "2"},
                                    {"cookie", "a=b"},
                                    {"x-trace", "3"},
                                    {"x-empty", ""}}));
}

TEST_F(BuildScopeTest, HeaderValuesAreBytesAsSent) {
  fields_ = {{"X-Latin1", "caf\xE9"}, {"X-Case", "MiXeD Value"}};
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(Headers(*scope), (Pairs{{"x-latin1", "caf\xE9"}, {"x-case", "MiXeD Value"}}));
}

TEST_F(BuildScopeTest, WebSocketScope) {
  request_.target("/ws/chat?room=1");
  fields_ = {{"Host", "h"}, {"Upgrade", "websocket"}};
  const auto scope = Build(/*websocket=*/true);
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->type(), v1::Scope::TYPE_WEBSOCKET);
  EXPECT_EQ(scope->scheme(), "ws");
  EXPECT_EQ(scope->method(), "");
  EXPECT_EQ(scope->http_version(), "1.1");
  EXPECT_EQ(scope->path(), "/ws/chat");
  EXPECT_EQ(scope->query_string(), "room=1");
  EXPECT_EQ(scope->subprotocols_size(), 0);
  EXPECT_EQ(Headers(*scope), (Pairs{{"host", "h"}, {"upgrade", "websocket"}}));
}

TEST_F(BuildScopeTest, SubprotocolsFromEveryField) {
  fields_ = {{"Sec-WebSocket-Protocol", "chat, superchat"},
             {"X-Other", "a, b"},
             {"sec-websocket-protocol", "  v2.json ,\t, graphql-ws  "},
             {"SEC-WEBSOCKET-PROTOCOL", "last"}};
  const auto scope = Build(/*websocket=*/true);
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(Subprotocols(*scope),
            (std::vector<std::string>{"chat", "superchat", "v2.json", "graphql-ws", "last"}));
  // The fields stay in the headers too, as sent.
  ASSERT_EQ(scope->headers_size(), 4);
  EXPECT_EQ(scope->headers(0).name(), "sec-websocket-protocol");
  EXPECT_EQ(scope->headers(0).value(), "chat, superchat");
  EXPECT_EQ(scope->headers(3).name(), "sec-websocket-protocol");
}

TEST_F(BuildScopeTest, MalformedSubprotocolIsAnError) {
  for (const char* value : {"chat/1", "a b", "chat, sup er", "\"quoted\"", "x;y", "a=b"}) {
    fields_ = {{"Sec-WebSocket-Protocol", value}};
    const auto scope = Build(/*websocket=*/true);
    ASSERT_FALSE(scope.ok()) << value;
    EXPECT_EQ(scope.status().code(), absl::StatusCode::kInvalidArgument) << value;
  }
}

TEST_F(BuildScopeTest, HttpScopeIgnoresSubprotocolFields) {
  fields_ = {{"Sec-WebSocket-Protocol", "not a/token"}};
  const auto scope = Build(/*websocket=*/false);
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->subprotocols_size(), 0);
  EXPECT_EQ(scope->headers_size(), 1);
}

TEST_F(BuildScopeTest, Ipv4Addresses) {
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->client().host(), "192.0.2.10");
  EXPECT_EQ(scope->client().port(), 54321u);
  EXPECT_EQ(scope->server().host(), "127.0.0.1");
  EXPECT_EQ(scope->server().port(), 8000u);
}

TEST_F(BuildScopeTest, Ipv6Addresses) {
  client_ = tcp::endpoint(make_address("2001:db8::7"), 40000);
  server_ = tcp::endpoint(make_address("::1"), 443);
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->client().host(), "2001:db8::7");
  EXPECT_EQ(scope->client().port(), 40000u);
  EXPECT_EQ(scope->server().host(), "::1");
  EXPECT_EQ(scope->server().port(), 443u);
}

TEST_F(BuildScopeTest, V4MappedIpv6AddressesAreUnmapped) {
  client_ = tcp::endpoint(make_address("::ffff:10.1.2.3"), 1234);
  server_ = tcp::endpoint(make_address("::ffff:127.0.0.1"), 80);
  const auto scope = Build();
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->client().host(), "10.1.2.3");
  EXPECT_EQ(scope->client().port(), 1234u);
  EXPECT_EQ(scope->server().host(), "127.0.0.1");
  EXPECT_EQ(scope->server().port(), 80u);
}

TEST(BuildScopeFromParserTest, ParsedRequestKeepsFieldOrder) {
  RequestParser parser;
  const std::string request =
      "get /a%20b?x=1 HTTP/1.0\r\n"
      "Host: h\r\n"
      "X-A: 1\r\n"
      "Accept: */*\r\n"
      "x-a: 2\r\n"
      "\r\n";
  boost::beast::error_code ec;
  ASSERT_EQ(parser.put(boost::asio::buffer(request), ec), request.size());
  ASSERT_FALSE(ec) << ec.message();
  const tcp::endpoint client(make_address("::ffff:192.0.2.1"), 1);
  const tcp::endpoint server(make_address("::ffff:192.0.2.2"), 2);
  const auto scope =
      BuildScope(parser.header(), parser.fields(), false, ToAddress(client), ToAddress(server), "");
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_EQ(scope->method(), "GET");
  EXPECT_EQ(scope->http_version(), "1.0");
  EXPECT_EQ(scope->path(), "/a b");
  EXPECT_EQ(scope->raw_path(), "/a%20b");
  EXPECT_EQ(scope->query_string(), "x=1");
  Pairs headers;
  for (const auto& header : scope->headers()) headers.emplace_back(header.name(), header.value());
  EXPECT_EQ(headers, (Pairs{{"host", "h"}, {"x-a", "1"}, {"accept", "*/*"}, {"x-a", "2"}}));
  EXPECT_EQ(scope->client().host(), "192.0.2.1");
  EXPECT_EQ(scope->server().host(), "192.0.2.2");
}

}  // namespace
}  // namespace sluice::gateway
