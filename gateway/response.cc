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
                           bool retry_after) {
  std::string out = StatusLine(status, false);
  out += "content-type: text/plain; charset=utf-8\r\n";
  out += "content-length: " + std::to_string(body.size()) + "\r\n";
  if (retry_after) out += "retry-after: 1\r\n";
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace sluice::gateway
