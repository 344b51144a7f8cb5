#include "gateway/request_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace sluice::gateway {
namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Feeds `data` to the parser until the header is done; returns the bytes it consumed.
size_t ParseHeader(RequestParser& parser, std::string_view data) {
  size_t used = 0;
  for (int i = 0; i < 100 && !parser.is_header_done(); ++i) {
    error_code ec;
    used += parser.put(boost::asio::buffer(data.data() + used, data.size() - used), ec);
    EXPECT_FALSE(ec) << ec.message();
    if (ec) break;
  }
  EXPECT_TRUE(parser.is_header_done());
  return used;
}

struct BodyResult {
  std::string body;
  std::vector<size_t> pieces;  // bytes delivered per buffer
  int need_buffer = 0;         // times the parser stopped on a full buffer
  error_code error;
};

// Drives the body as HttpSession does: body bytes are appended to a piece of at most
// `buffer_size` bytes; a put() into a full piece ends with need_buffer, and the piece is then
// "sent" and a new one started. At most `step` more bytes of `data` become readable at a time.
BodyResult ParseBody(RequestParser& parser, std::string_view data, size_t buffer_size,
                     size_t step = std::string::npos) {
  BodyResult result;
  std::string piece;
  const auto flush = [&] {
    if (!piece.empty()) {
      result.body += piece;
      result.pieces.push_back(piece.size());
    }
    piece.clear();
    parser.set_body_sink(&piece, buffer_size);
  };
  size_t used = 0;
  size_t available = std::min(step, data.size());
  parser.set_body_sink(&piece, buffer_size);
  bool read_more = false;
  for (int i = 0; i < 100000 && !parser.is_done(); ++i) {
    if (read_more || used == available) {
      if (available == data.size()) {
        result.error = http::error::partial_message;
        break;
      }
      available = std::min(data.size(), available + step);
      read_more = false;
    }
    error_code ec;
    used += parser.put(boost::asio::buffer(data.data() + used, available - used), ec);
    if (ec == http::error::need_buffer) {
      ++result.need_buffer;
      flush();
    } else if (ec == http::error::need_more) {
      read_more = true;
    } else if (ec) {
      result.error = ec;
      break;
    }
  }
  flush();
  EXPECT_EQ(used, data.size()) << "bytes left over";
  return result;
}

TEST(RequestParserTest, RequestLineAndFieldsInOrderWithDuplicates) {
  RequestParser parser;
  const std::string request =
      "GET /path?q=1 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "X-Trace: one\r\n"
      "Accept: */*\r\n"
      "x-trace: two\r\n"
      "Cookie: a=b\r\n"
      "X-TRACE: three\r\n"
      "\r\n";
  EXPECT_EQ(ParseHeader(parser, request), request.size());
  EXPECT_TRUE(parser.is_done());  // no body
  EXPECT_EQ(parser.header().method(), http::verb::get);
  EXPECT_EQ(parser.header().target(), "/path?q=1");
  EXPECT_EQ(parser.header().version(), 11);
  EXPECT_EQ(parser.fields(), (Pairs{{"Host", "example.com"},
                                    {"X-Trace", "one"},
                                    {"Accept", "*/*"},
                                    {"x-trace", "two"},
                                    {"Cookie", "a=b"},
                                    {"X-TRACE", "three"}}));
  // The Beast header has the fields too.
  EXPECT_EQ(parser.header()[http::field::host], "example.com");
  EXPECT_EQ(parser.header().count("x-trace"), 3u);
}

TEST(RequestParserTest, HeaderFedOneByteAtATime) {
  RequestParser parser;
  const std::string request = "PUT /x HTTP/1.0\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n";
  size_t used = 0;
  std::string pending;
  for (char c : request) {
    pending.push_back(c);
    error_code ec;
    const size_t n = parser.put(boost::asio::buffer(pending), ec);
    if (ec == http::error::need_more) continue;
    ASSERT_FALSE(ec) << ec.message();
    pending.erase(0, n);
    used += n;
  }
  EXPECT_TRUE(parser.is_header_done());
  EXPECT_EQ(used + pending.size(), request.size());
  EXPECT_EQ(parser.header().method(), http::verb::put);
  EXPECT_EQ(parser.header().version(), 10);
  EXPECT_EQ(parser.fields(), (Pairs{{"A", "1"}, {"B", "2"}, {"A", "3"}}));
}

TEST(RequestParserTest, UnknownMethodKeepsItsName) {
  RequestParser parser;
  ParseHeader(parser, "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(parser.header().method(), http::verb::unknown);
  EXPECT_EQ(parser.header().method_string(), "BREW");
  EXPECT_EQ(parser.header().target(), "/pot");
}

TEST(RequestParserTest, ReleaseFieldsMovesThemOut) {
  RequestParser parser;
  ParseHeader(parser, "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n");
  const FieldList fields = parser.release_fields();
  EXPECT_EQ(fields, (Pairs{{"Host", "h"}, {"X", "y"}}));
}

TEST(RequestParserTest, ContentLengthBodyThroughASmallBuffer) {
  RequestParser parser;
  const std::string body = "0123456789abcdefghijklmnopqrstuvwxyz";  // 36 bytes
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  const std::string request = head + body;
  const size_t used = ParseHeader(parser, request);
  ASSERT_EQ(used, head.size());
  EXPECT_FALSE(parser.is_done());
  ASSERT_TRUE(parser.content_length().has_value());
  EXPECT_EQ(*parser.content_length(), body.size());

  const BodyResult result = ParseBody(parser, std::string_view(request).substr(used), 8);
  EXPECT_FALSE(result.error) << result.error.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(result.body, body);
  EXPECT_EQ(result.pieces, (std::vector<size_t>{8, 8, 8, 8, 4}));
  EXPECT_EQ(result.need_buffer, 4);
}

TEST(RequestParserTest, ContentLengthBodyArrivingInSmallReads) {
  RequestParser parser;
  std::string body;
  for (int i = 0; i < 1000; ++i) body += static_cast<char>('a' + i % 26);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n";
  const std::string request = head + body;
  const size_t used = ParseHeader(parser, request);
  const BodyResult result =
      ParseBody(parser, std::string_view(request).substr(used), 64, /*step=*/7);
  EXPECT_FALSE(result.error) << result.error.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(result.body, body);
}

TEST(RequestParserTest, ChunkedBodyThroughASmallBuffer) {
  RequestParser parser;
  const std::string head = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunks =
      "5\r\nhello\r\n"
      "7;ext=1\r\n, world\r\n"
      "1A\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
      "0\r\n"
      "X-Trailer: t\r\n"
      "\r\n";
  const std::string request = head + chunks;
  const size_t used = ParseHeader(parser, request);
  ASSERT_EQ(used, head.size());
  EXPECT_TRUE(parser.chunked());

  const BodyResult result = ParseBody(parser, std::string_view(request).substr(used), 4);
  EXPECT_FALSE(result.error) << result.error.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(result.body, "hello, worldABCDEFGHIJKLMNOPQRSTUVWXYZ");
  for (size_t piece : result.pieces) EXPECT_LE(piece, 4u);
  EXPECT_GT(result.need_buffer, 0);
}

TEST(RequestParserTest, ChunkedBodyArrivingInSmallReads) {
  RequestParser parser;
  std::string body;
  std::string chunks;
  for (int i = 1; i <= 20; ++i) {
    const std::string chunk(static_cast<size_t>(i * 3), static_cast<char>('a' + i));
    body += chunk;
    char size[16];
    std::snprintf(size, sizeof size, "%x\r\n", static_cast<unsigned>(chunk.size()));
    chunks += size + chunk + "\r\n";
  }
  chunks += "0\r\n\r\n";
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string request = head + chunks;
  const size_t used = ParseHeader(parser, request);
  const BodyResult result =
      ParseBody(parser, std::string_view(request).substr(used), 16, /*step=*/5);
  EXPECT_FALSE(result.error) << result.error.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(result.body, body);
}

TEST(RequestParserTest, FullBufferEndsThePutWithNeedBuffer) {
  RequestParser parser;
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n";
  const std::string body = "abcdefghijklmnopqrst";
  const std::string request = head + body;
  const size_t used = ParseHeader(parser, request);
  ASSERT_EQ(used, head.size());

  std::string piece;
  parser.set_body_sink(&piece, 8);
  error_code ec;
  size_t n = parser.put(boost::asio::buffer(body), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 8u);
  EXPECT_EQ(piece, "abcdefgh");

  // The piece is full: nothing more is taken.
  n = parser.put(boost::asio::buffer(body.data() + 8, body.size() - 8), ec);
  EXPECT_EQ(ec, http::error::need_buffer);
  EXPECT_EQ(n, 0u);

  // An eager parser fills the piece and stops on need_buffer within one put.
  parser.eager(true);
  piece.clear();
  n = parser.put(boost::asio::buffer(body.data() + 8, body.size() - 8), ec);
  EXPECT_EQ(ec, http::error::need_buffer);
  EXPECT_EQ(n, 8u);
  EXPECT_EQ(piece, "ijklmnop");

  piece.clear();
  n = parser.put(boost::asio::buffer(body.data() + 16, body.size() - 16), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(piece, "qrst");
  EXPECT_TRUE(parser.is_done());
}

TEST(RequestParserTest, HeaderLimit) {
  RequestParser parser;
  parser.max_header_bytes(64);
  const std::string request =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(200, 'v') + "\r\n\r\n";
  error_code ec;
  parser.put(boost::asio::buffer(request), ec);
  EXPECT_EQ(ec, http::error::header_limit);
  EXPECT_FALSE(parser.is_header_done());
}

TEST(RequestParserTest, HeaderWithinTheLimitParses) {
  RequestParser parser;
  const std::string request =
      "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(20, 'v') + "\r\n\r\n";
  parser.max_header_bytes(static_cast<uint32_t>(request.size()));
  error_code ec;
  EXPECT_EQ(parser.put(boost::asio::buffer(request), ec), request.size());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(parser.fields().size(), 2u);
}

// Beast 1.81 counts its header limit only over the bytes it has not parsed yet: a header
// whose pieces each end just past a line break would never reach it. Ours counts them all.
TEST(RequestParserTest, HeaderLimitHoldsWhenTheHeaderArrivesLineByLine) {
  RequestParser parser;
  parser.max_header_bytes(1024);
  std::string pending = "GET / HTTP/1.1\r\nX";
  error_code ec;
  size_t fields = 0;
  for (int i = 0; i < 1000 && !ec; ++i) {
    const size_t used = parser.put(boost::asio::buffer(pending), ec);
    if (ec == http::error::need_more) ec = {};
    pending.erase(0, used);
    pending += "-Field-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\nX";
    fields = parser.fields().size();
  }
  EXPECT_EQ(ec, http::error::header_limit);
  EXPECT_LE(fields * 50, 1024u) << "fields beyond the limit were accepted";
}

TEST(RequestParserTest, MalformedRequestIsAnError) {
  RequestParser parser;
  const std::string request = "GET / HTTP/1.1\r\nBad Field: x\r\n\r\n";
  error_code ec;
  parser.put(boost::asio::buffer(request), ec);
  EXPECT_TRUE(ec);
  EXPECT_NE(ec, http::error::need_more);
}

}  // namespace
}  // namespace sluice::gateway
