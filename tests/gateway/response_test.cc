#include "gateway/response.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace sluice::gateway {
namespace {

using namespace std::string_literals;

HeaderList MakeHeaders(const std::vector<std::pair<std::string, std::string>>& pairs) {
  HeaderList headers;
  for (const auto& [name, value] : pairs) {
    v1::Header* header = headers.Add();
    header->set_name(name);
    header->set_value(value);
  }
  return headers;
}

v1::HttpResponseStart MakeStart(unsigned status,
                                const std::vector<std::pair<std::string, std::string>>& pairs) {
  v1::HttpResponseStart start;
  start.set_status(status);
  *start.mutable_headers() = MakeHeaders(pairs);
  return start;
}

TEST(ValidHeadersTest, AcceptsOrdinaryHeaders) {
  EXPECT_TRUE(ValidHeaders(MakeHeaders({})));
  EXPECT_TRUE(ValidHeaders(MakeHeaders({{"content-type", "text/plain; charset=utf-8"},
                                        {"X-Custom_Header.v1", "a\tb c"},
                                        {"set-cookie", "a=b; Path=/"},
                                        {"x-empty", ""},
                                        {"x-latin1", "caf\xE9"},
                                        {"!#$%&'*+-.^_`|~", "token chars"}})));
}

TEST(ValidHeadersTest, RejectsCrLfNulInValues) {
  EXPECT_FALSE(ValidHeaders(MakeHeaders({{"x-a", "one\r\nx-injected: 1"}})));
  EXPECT_FALSE(ValidHeaders(MakeHeaders({{"x-a", "cr\r"}})));
  EXPECT_FALSE(ValidHeaders(MakeHeaders({{"x-a", "lf\nlf"}})));
  EXPECT_FALSE(ValidHeaders(MakeHeaders({{"x-a", "nul\0nul"s}})));
  // One bad header among good ones.
  EXPECT_FALSE(ValidHeaders(MakeHeaders({{"x-ok", "fine"}, {"x-bad", "\n"}})));
}

TEST(ValidHeadersTest, RejectsBadNames) {
  for (const std::string& name : {""s, "x a"s, "x:a"s, "x\r\n"s, "x\0"s, "caf\xE9"s, "(x)"s, "x/y"s,
                                  "\"q\""s, "a@b"s, "x\tb"s}) {
    EXPECT_FALSE(ValidHeaders(MakeHeaders({{name, "v"}}))) << '"' << name << '"';
  }
}

TEST(DeclaredLengthTest, AbsentIsNullopt) {
  const auto length = DeclaredLength(MakeHeaders({{"content-type", "text/plain"}}));
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_FALSE(length->has_value());
}

TEST(DeclaredLengthTest, ValidValue) {
  auto length = DeclaredLength(MakeHeaders({{"x-a", "1"}, {"content-length", "42"}}));
  ASSERT_TRUE(length.ok()) << length.status();
  ASSERT_TRUE(length->has_value());
  EXPECT_EQ(**length, 42u);

  length = DeclaredLength(MakeHeaders({{"Content-Length", "0"}}));
  ASSERT_TRUE(length.ok()) << length.status();
  ASSERT_TRUE(length->has_value());
  EXPECT_EQ(**length, 0u);

  length = DeclaredLength(MakeHeaders({{"CONTENT-LENGTH", "18446744073709551615"}}));
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_EQ(**length, std::numeric_limits<uint64_t>::max());
}

TEST(DeclaredLengthTest, AgreeingDuplicatesAreFine) {
  const auto length =
      DeclaredLength(MakeHeaders({{"content-length", "7"}, {"Content-Length", "7"}}));
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_EQ(**length, 7u);
}

TEST(DeclaredLengthTest, ConflictingDuplicatesAreAnError) {
  const auto length =
      DeclaredLength(MakeHeaders({{"content-length", "7"}, {"content-length", "8"}}));
  ASSERT_FALSE(length.ok());
  EXPECT_EQ(length.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DeclaredLengthTest, MalformedValuesAreAnError) {
  for (const char* value : {"", "abc", "-1", "+5", " 5", "5 ", "4 2", "0x10", "1.5", "5,5",
                            "18446744073709551616", "99999999999999999999999"}) {
    const auto length = DeclaredLength(MakeHeaders({{"content-length", value}}));
    ASSERT_FALSE(length.ok()) << '"' << value << '"';
    EXPECT_EQ(length.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ResponseHeadTest, StatusLineHeadersAndContentLength) {
  const auto head = ResponseHead(MakeStart(200, {{"content-type", "text/plain"}, {"X-A", "1"}}),
                                 /*http10=*/false, /*keep_alive=*/true, /*chunked=*/false, 5);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\n"
            "content-type: text/plain\r\n"
            "X-A: 1\r\n"
            "content-length: 5\r\n"
            "\r\n");
}

TEST(ResponseHeadTest, KeepsApplicationHeadersInOrderWithDuplicates) {
  const auto head =
      ResponseHead(MakeStart(201, {{"set-cookie", "a=1"}, {"x-b", "2"}, {"set-cookie", "c=3"}}),
                   false, true, false, std::nullopt);
  EXPECT_EQ(head,
            "HTTP/1.1 201 Created\r\n"
            "set-cookie: a=1\r\n"
            "x-b: 2\r\n"
            "set-cookie: c=3\r\n"
            "\r\n");
}

TEST(ResponseHeadTest, DropsHopByHopApplicationHeaders) {
  const auto head = ResponseHead(MakeStart(200, {{"Connection", "keep-alive"},
                                                 {"x-a", "1"},
                                                 {"keep-alive", "timeout=5"},
                                                 {"Transfer-Encoding", "gzip, chunked"},
                                                 {"TRANSFER-ENCODING", "identity"},
                                                 {"x-b", "2"}}),
                                 false, true, /*chunked=*/true, std::nullopt);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\n"
            "x-a: 1\r\n"
            "x-b: 2\r\n"
            "transfer-encoding: chunked\r\n"
            "\r\n");
}

TEST(ResponseHeadTest, ApplicationContentLengthIsKept) {
  const auto head =
      ResponseHead(MakeStart(200, {{"Content-Length", "3"}}), false, true, false, std::nullopt);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
}

TEST(ResponseHeadTest, ZeroContentLength) {
  const auto head = ResponseHead(MakeStart(200, {}), false, true, false, 0);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
}

TEST(ResponseHeadTest, NoFramingHeadersWhenNoneChosen) {
  const auto head = ResponseHead(MakeStart(204, {}), false, true, false, std::nullopt);
  EXPECT_EQ(head, "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(ResponseHeadTest, ConnectionCloseWhenNotKeepAlive) {
  auto head = ResponseHead(MakeStart(200, {{"connection", "keep-alive"}}), false,
                           /*keep_alive=*/false, false, 2);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n");

  head =
      ResponseHead(MakeStart(200, {}), /*http10=*/true, /*keep_alive=*/false, false, std::nullopt);
  EXPECT_EQ(head, "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n");
}

TEST(ResponseHeadTest, Http10KeepAliveSaysSo) {
  const auto head = ResponseHead(MakeStart(404, {{"connection", "close"}}), /*http10=*/true,
                                 /*keep_alive=*/true, false, 9);
  EXPECT_EQ(head,
            "HTTP/1.0 404 Not Found\r\n"
            "content-length: 9\r\n"
            "connection: keep-alive\r\n"
            "\r\n");
}

TEST(ResponseHeadTest, UnknownStatusHasAnEmptyReason) {
  EXPECT_EQ(ResponseHead(MakeStart(520, {}), false, true, false, 0),
            "HTTP/1.1 520 \r\ncontent-length: 0\r\n\r\n");
  EXPECT_EQ(ResponseHead(MakeStart(299, {}), false, true, false, std::nullopt),
            "HTTP/1.1 299 \r\n\r\n");
  EXPECT_EQ(ResponseHead(MakeStart(999, {}), true, false, false, std::nullopt),
            "HTTP/1.0 999 \r\nconnection: close\r\n\r\n");
}

TEST(ResponseHeadTest, KnownReasons) {
  EXPECT_EQ(ResponseHead(MakeStart(500, {}), false, true, false, std::nullopt),
            "HTTP/1.1 500 Internal Server Error\r\n\r\n");
  EXPECT_EQ(ResponseHead(MakeStart(304, {}), false, true, false, std::nullopt),
            "HTTP/1.1 304 Not Modified\r\n\r\n");
}

TEST(ChunkHeaderTest, LowerCaseHex) {
  EXPECT_EQ(ChunkHeader(0), "0\r\n");
  EXPECT_EQ(ChunkHeader(1), "1\r\n");
  EXPECT_EQ(ChunkHeader(10), "a\r\n");
  EXPECT_EQ(ChunkHeader(255), "ff\r\n");
  EXPECT_EQ(ChunkHeader(4096), "1000\r\n");
  EXPECT_EQ(ChunkHeader(65536), "10000\r\n");
  EXPECT_EQ(ChunkHeader(0xdeadbeef), "deadbeef\r\n");
  EXPECT_EQ(ChunkHeader(std::numeric_limits<size_t>::max()), "ffffffffffffffff\r\n");
}

TEST(CannedResponseTest, ServiceUnavailableWithRetryAfter) {
  EXPECT_EQ(CannedResponse(503, "busy\n", /*keep_alive=*/true, /*retry_after=*/true),
            "HTTP/1.1 503 Service Unavailable\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            "content-length: 5\r\n"
            "retry-after: 1\r\n"
            "\r\n"
            "busy\n");
}

TEST(CannedResponseTest, NoRetryAfterUnlessAsked) {
  const auto response = CannedResponse(503, "busy\n", true, /*retry_after=*/false);
  EXPECT_EQ(response.find("retry-after"), std::string::npos);
  EXPECT_EQ(response,
            "HTTP/1.1 503 Service Unavailable\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            "content-length: 5\r\n"
            "\r\n"
            "busy\n");
}

TEST(CannedResponseTest, BadRequestClosing) {
  EXPECT_EQ(CannedResponse(400, "Bad Request\n", /*keep_alive=*/false, false),
            "HTTP/1.1 400 Bad Request\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            "content-length: 12\r\n"
            "connection: close\r\n"
            "\r\n"
            "Bad Request\n");
}

TEST(CannedResponseTest, HeaderFieldsTooLargeAndEmptyBody) {
  EXPECT_EQ(CannedResponse(431, "", false, false),
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            "content-length: 0\r\n"
            "connection: close\r\n"
            "\r\n");
}

}  // namespace
}  // namespace sluice::gateway
