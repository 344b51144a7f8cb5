#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

using HeaderList = google::protobuf::RepeatedPtrField<v1::Header>;

/// Header names are tokens; values hold no CR, LF or NUL. Anything else from a worker is a
/// protocol error (the client gets 500, never a split response).
bool ValidHeaders(const HeaderList& headers);

/// The application's Content-Length, if it set one. InvalidArgument when malformed or when
/// several disagree.
absl::StatusOr<std::optional<uint64_t>> DeclaredLength(const HeaderList& headers);

/// Status line and headers of a response, ending with the blank line. The application's
/// hop-by-hop headers (connection, keep-alive, transfer-encoding) give way to the framing
/// chosen here: `chunked`, or `content_length` when given and the application set none.
std::string ResponseHead(const v1::HttpResponseStart& start, bool http10, bool keep_alive,
                         bool chunked, std::optional<uint64_t> content_length);

/// "<hex size>\r\n".
std::string ChunkHeader(size_t size);

/// A complete plain-text response the gateway answers by itself (400, 431, 500, 502, 503).
/// `extra_headers`: more header lines, each ending in CRLF.
std::string CannedResponse(unsigned status, std::string_view body, bool keep_alive,
                           bool retry_after, std::string_view extra_headers = {});

/// Turns one request's http.response.start and http.response.body events into bytes for
/// the client, choosing the framing: the application's Content-Length (checked: a body that
/// does not match it is an error), a length of our own when the first body is the last,
/// chunked otherwise (HTTP/1.0: delimited by close), none for HEAD, 204 and 304. The head
/// goes out with the first body, so a response whose first body already breaks a rule can
/// still be answered 500 instead.
/// Thread-safety: none; one per request.
class ResponseFramer final {
 public:
  enum class State {
    kAwaiting,   // no http.response.start yet
    kStarted,    // start received, head not yet written (it goes with the first body)
    kStreaming,  // head written, more body to come
    kComplete,   // the last body was framed
  };
  /// What to write for one body event.
  struct Piece {
    std::string head;  // the response head (first piece) and/or a chunk header
    std::string body;
    std::string_view tail;
  };

  /// `keep_alive`: the client asked for a persistent connection (RFC 9112 9.3).
  ResponseFramer(bool head_request, bool http10, bool keep_alive)
      : head_request_(head_request), http10_(http10), keep_alive_(keep_alive) {}

  /// InvalidArgument: a second start, a status outside 200-999, an invalid header or
  /// Content-Length.
  absl::Status Start(v1::HttpResponseStart&& start);
  /// Frames one body event. `request_done`: the request was read whole; if not, the head
  /// says `connection: close` (the unread rest is drained, not parsed). InvalidArgument: a
  /// body before start or after the last, or one that does not match the Content-Length.
  absl::StatusOr<Piece> Body(std::string&& body, bool more, bool request_done);

  State state() const { return state_; }
  /// The head has been written: an error can no longer become a 500.
  bool head_written() const { return state_ == State::kStreaming || state_ == State::kComplete; }
  /// The connection may carry another request after this response.
  bool keep_alive() const { return keep_alive_; }
  /// The connection closes after this response (says so in the head, if not yet written).
  void DisableKeepAlive() { keep_alive_ = false; }

 private:
  enum class Framing { kLength, kChunked, kUntilClose, kNone };

  const bool head_request_;
  const bool http10_;
  bool keep_alive_;
  State state_ = State::kAwaiting;
  Framing framing_ = Framing::kNone;
  uint64_t remaining_ = 0;  // of a declared Content-Length
  v1::HttpResponseStart start_;
};

}  // namespace sluice::gateway
