#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>
#include <string>
#include <utility>
#include <vector>

namespace sluice::gateway {

/// Request fields exactly as sent: order and duplicates kept, names as written.
using FieldList = std::vector<std::pair<std::string, std::string>>;

/// An HTTP request parser that keeps what ASGI needs and Beast's field container loses: the
/// order of header fields (basic_fields files a repeated name next to its first one). The
/// body (de-chunked) is appended, piece by piece, to a caller-provided string up to a limit:
/// when that is reached the put ends with http::error::need_buffer.
/// The header limit is enforced here, on the whole request line and fields: Beast 1.81's own
/// header_limit counts only the bytes it has not parsed yet, so a header sent in pieces that
/// each end just past a line break would never reach it.
/// Thread-safety: none; one per connection.
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  using Header = boost::beast::http::request_header<>;

  /// The most bytes the request line and fields may take (CRLFs and ": " counted).
  void max_header_bytes(uint32_t limit) {
    max_header_bytes_ = limit;
    header_limit(limit);
  }

  Header& header() { return header_; }
  const FieldList& fields() const { return fields_; }
  FieldList release_fields() { return std::move(fields_); }

  /// Where the next body bytes go: appended to *out while out->size() < limit.
  void set_body_sink(std::string* out, size_t limit) {
    body_ = out;
    body_limit_ = limit;
  }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_string,
                       string_view target, int version, error_code& ec) override {
    if (Over(method_string.size() + target.size() + 11, ec)) return;  // " HTTP/1.1\r\n"
    if (method == boost::beast::http::verb::unknown) {
      header_.method_string(method_string);
    } else {
      header_.method(method);
    }
    header_.target(target);
    header_.version(version);
  }
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view name, string_view value,
                     error_code& ec) override {
    if (Over(name.size() + value.size() + 4, ec)) return;
    header_.insert(name, value);
    fields_.emplace_back(std::string(name), std::string(value));
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(string_view body, error_code& ec) override { return Sink(body, ec); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return Sink(body, ec);
  }
  void on_finish_impl(error_code&) override {}

  bool Over(size_t bytes, error_code& ec) {
    header_bytes_ += bytes;
    if (header_bytes_ <= max_header_bytes_) return false;
    ec = boost::beast::http::error::header_limit;
    return true;
  }

  size_t Sink(string_view body, error_code& ec) {
    const size_t room = body_ && body_->size() < body_limit_ ? body_limit_ - body_->size() : 0;
    if (room == 0) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    const size_t n = std::min(body.size(), room);
    body_->append(body.data(), n);
    return n;
  }

  uint64_t max_header_bytes_ = 8192;  // Beast's default header_limit
  uint64_t header_bytes_ = 0;
  Header header_;
  FieldList fields_;
  std::string* body_ = nullptr;
  size_t body_limit_ = 0;
};

}  // namespace sluice::gateway
