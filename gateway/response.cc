#include "gateway/response.h"

#include <boost/beast/http/status.hpp>
#include <charconv>

#include "common/text.h"

namespace sluice::gateway {
namespace http = boost::beast::http;

namespace {

std::string StatusLine(unsigned status, bool http10) {
  std::string line = http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  line += std::to_string(status);
  line += ' ';
  const auto known = http::int_to_status(status);
  if (known != http::status::unknown) line += http::obsolete_reason(known);
  line += "\r\n";
  return line;
}

}  // namespace

bool ValidHeaders(const HeaderList& headers) {
  for (const v1::Header& header : headers) {
    if (!ValidHeaderField(header.name(), header.value())) return false;
  }
  return true;
}

absl::StatusOr<std::optional<uint64_t>> DeclaredLength(const HeaderList& headers) {
  std::optional<uint64_t> length;
  for (const v1::Header& header : headers) {
    if (!IEquals(header.name(), "content-length")) continue;
    const std::string& text = header.value();
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
        (length && *length != value)) {
      return absl::InvalidArgumentError("bad content-length");
    }
    length = value;
  }
  return length;
}

std::string ResponseHead(const v1::HttpResponseStart& start, bool http10, bool keep_alive,
                         bool chunked, std::optional<uint64_t> content_length) {
  std::string head = StatusLine(start.status(), http10);
  for (const v1::Header& header : start.headers()) {
    const std::string& name = header.name();
    if (IEquals(name, "connection") || IEquals(name, "keep-alive") ||
        IEquals(name, "transfer-encoding")) {
      continue;
    }
    head += name;
    head += ": ";
    head += header.value();
    head += "\r\n";
  }
  if (content_length) head += "content-length: " + std::to_string(*content_length) + "\r\n";
  if (chunked) head += "transfer-encoding: chunked\r\n";
  if (!keep_alive) {
    head += "connection: close\r\n";
  } else if (http10) {
    head += "connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

std::string ChunkHeader(size_t size) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, size, 16);
  std::string out(digits, end);
  out += "\r\n";
  return out;
}

std::string CannedResponse(unsigned status, std::string_view body, bool keep_alive,
                           bool retry_after, std::string_view extra_headers) {
  std::string out = StatusLine(status, false);
  out += "content-type: text/plain; charset=utf-8\r\n";
  out += "content-length: " + std::to_string(body.size()) + "\r\n";
  if (retry_after) out += "retry-after: 1\r\n";
  if (!keep_alive) out += "connection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

absl::Status ResponseFramer::Start(v1::HttpResponseStart&& start) {
  if (state_ != State::kAwaiting) return absl::InvalidArgumentError("second http.response.start");
  if (start.status() < 200 || start.status() > 999) {
    return absl::InvalidArgumentError("status out of range: " + std::to_string(start.status()));
  }
  if (!ValidHeaders(start.headers())) return absl::InvalidArgumentError("invalid response header");
  if (!DeclaredLength(start.headers()).ok())
    return absl::InvalidArgumentError("bad content-length");
  start_ = std::move(start);
  state_ = State::kStarted;
  return absl::OkStatus();
}

absl::StatusOr<ResponseFramer::Piece> ResponseFramer::Body(std::string&& body, bool more,
                                                           bool request_done) {
  if (state_ == State::kAwaiting) return absl::InvalidArgumentError("body before start");
  if (state_ == State::kComplete) return absl::InvalidArgumentError("body after the last one");
  Piece piece;
  if (state_ == State::kStarted) {
    const unsigned status = start_.status();
    const std::optional<uint64_t> declared = *DeclaredLength(start_.headers());
    std::optional<uint64_t> ours;
    if (head_request_ || status == 204 || status == 304) {
      framing_ = Framing::kNone;
    } else if (declared) {
      framing_ = Framing::kLength;
      remaining_ = *declared;
      // Checked before the head goes out, so a mismatch can still be a 500.
      if (body.size() > remaining_ || (!more && body.size() != remaining_)) {
        return absl::InvalidArgumentError("body of " + std::to_string(body.size()) +
                                          " bytes does not match content-length " +
                                          std::to_string(remaining_));
      }
    } else if (!more) {
      framing_ = Framing::kLength;
      remaining_ = body.size();
      ours = body.size();
    } else if (http10_) {
      framing_ = Framing::kUntilClose;
    } else {
      framing_ = Framing::kChunked;
    }
    keep_alive_ = keep_alive_ && request_done && framing_ != Framing::kUntilClose;
    piece.head = ResponseHead(start_, http10_, keep_alive_, framing_ == Framing::kChunked, ours);
    start_ = v1::HttpResponseStart();
  }
  state_ = more ? State::kStreaming : State::kComplete;
  switch (framing_) {
    case Framing::kNone:
      break;
    case Framing::kLength:
      if (body.size() > remaining_) {
        return absl::InvalidArgumentError("body longer than its content-length");
      }
      remaining_ -= body.size();
      if (!more && remaining_ > 0) {
        return absl::InvalidArgumentError("body shorter than its content-length");
      }
      piece.body = std::move(body);
      break;
    case Framing::kChunked:
      if (!body.empty()) {
        piece.head += ChunkHeader(body.size());
        piece.body = std::move(body);
        piece.tail = more ? "\r\n" : "\r\n0\r\n\r\n";
      } else if (!more) {
        piece.tail = "0\r\n\r\n";
      }
      break;
    case Framing::kUntilClose:
      piece.body = std::move(body);
      break;
  }
  return piece;
}

}  // namespace sluice::gateway
