// Fuzz target: the gateway's HTTP/1.1 request parser (gateway/request_parser.h), driven the
// way HttpSession drives it. The input is the byte stream a client sends on one connection:
// requests are read one after another (pipelined, keep-alive) until the stream ends, a
// request is refused (400/413/431 end the connection), it upgrades, or it does not keep the
// connection alive. Each request: read_header with the gateway's limits, then the body in
// pieces into a small buffer with read_some, need_buffer meaning "buffer full, send it".
// The "socket" hands out the input a few bytes at a time, so every split point is reached.
// Checks: Beast's and our own bookkeeping agree (field list, body byte counts, limits).

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "gateway/request_parser.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using sluice::gateway::RequestParser;

// The gateway's limits (--max-header-bytes, --max-body-bytes) scaled down to the fuzzer's
// -max_len, so both limit paths are reachable.
constexpr std::uint32_t kMaxHeaderBytes = 1024;
constexpr std::uint64_t kMaxBodyBytes = 2048;
constexpr int kMaxRequests = 64;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

// A SyncReadStream over the input: at most `step` bytes per read, then EOF.
class ByteStream {
 public:
  ByteStream(const std::uint8_t* data, std::size_t size, std::size_t step)
      : data_(data), size_(size), step_(step) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    if (pos_ == size_) {
      ec = net::error::eof;
      return 0;
    }
    ec = {};
    const std::size_t n =
        net::buffer_copy(buffers, net::buffer(data_ + pos_, std::min(step_, size_ - pos_)));
    pos_ += n;
    return n;
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t step_;
  std::size_t pos_ = 0;
};

// As the gateway's KeepAlive (http_session.cc): RFC 9112 9.3.
bool KeepAlive(const RequestParser::Header& request) {
  bool close = false;
  bool keep = false;
  for (const auto& token : http::token_list(request[http::field::connection])) {
    close = close || beast::iequals(token, "close");
    keep = keep || beast::iequals(token, "keep-alive");
  }
  return request.version() >= 11 ? !close : keep;
}

// One request; false when the connection ends after it.
bool ServeOne(ByteStream& stream, beast::flat_buffer& buffer, std::size_t piece) {
  std::optional<RequestParser> parser;
  parser.emplace();
  parser->max_header_bytes(kMaxHeaderBytes);
  parser->body_limit(kMaxBodyBytes);
  beast::error_code ec;
  http::read_header(stream, buffer, *parser, ec);
  if (ec) return false;  // 400 / 413 / 431 / client left: the connection ends
  FUZZ_CHECK(parser->is_header_done());

  auto& request = parser->header();
  // What BuildScope reads.
  FUZZ_CHECK(parser->fields().size() ==
             static_cast<std::size_t>(std::distance(request.begin(), request.end())));
  std::size_t header_bytes = 0;
  for (const auto& [name, value] : parser->fields()) {
    FUZZ_CHECK(!name.empty());
    header_bytes += name.size() + value.size();
  }
  FUZZ_CHECK(header_bytes <= kMaxHeaderBytes);
  (void)request.method_string();
  (void)request.target();
  const bool upgrade = beast::websocket::is_upgrade(request);
  const bool keep_alive = KeepAlive(request);
  const auto content_length = parser->content_length();
  const bool chunked = parser->chunked();
  if (upgrade) return false;  // the socket moves to the WebSocket session

  // The body, piece by piece, as HttpSession::ReadBody / OnBody.
  std::string chunk;
  std::uint64_t body_bytes = 0;
  for (int reads = 0; !parser->is_done(); ++reads) {
    FUZZ_CHECK(reads < 1'000'000);
    chunk.clear();
    parser->set_body_sink(&chunk, piece);
    http::read_some(stream, buffer, *parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return false;  // body_limit: 413 or cut; anything else: the client left
    FUZZ_CHECK(chunk.size() <= piece);
    body_bytes += chunk.size();
    FUZZ_CHECK(body_bytes <= kMaxBodyBytes);
  }
  if (content_length && !chunked) FUZZ_CHECK(body_bytes == *content_length);
  if (!keep_alive) return false;
  // The next request: release_fields() and the parser are dropped, as between requests.
  (void)parser->release_fields();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Read granularity and body-piece size vary with the input (a hash of it), so the corpus
  // stays plain HTTP text while every mutation also tries other split points.
  std::uint32_t hash = 2166136261u;
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 16777619u;
  const std::size_t step = 1 + hash % 127;
  const std::size_t piece = 1 + (hash >> 8) % 16;
  ByteStream stream(data, size, step);
  beast::flat_buffer buffer;
  for (int i = 0; i < kMaxRequests && ServeOne(stream, buffer, piece); ++i) {
  }
  return 0;
}
