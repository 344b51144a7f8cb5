#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace sluice::gateway {

/// Request fields exactly as sent: order and duplicates kept, names as written.
using FieldList = std::vector<std::pair<std::string, std::string>>;

/// An HTTP request parser that keeps what ASGI needs and Beast's field container loses: the
/// order of header fields (basic_fields files a repeated name next to its first one). The
/// body goes, piece by piece, into a caller-provided buffer, as with buffer_body: when it is
/// full the read ends with http::error::need_buffer.
/// Thread-safety: none; one per connection.
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  using Header = boost::beast::http::request_header<>;

  Header& header() { return header_; }
  const FieldList& fields() const { return fields_; }
  FieldList release_fields() { return std::move(fields_); }

  /// Where the next body bytes go.
  void set_body_buffer(char* data, size_t size) {
    body_ = data;
    body_left_ = size;
  }
  size_t body_left() const { return body_left_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_string,
                       string_view target, int version, error_code&) override {
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
                     error_code&) override {
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

  size_t Sink(string_view body, error_code& ec) {
    if (body_left_ == 0) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    const size_t n = std::min(body.size(), body_left_);
    std::memcpy(body_, body.data(), n);
    body_ += n;
    body_left_ -= n;
    return n;
  }

  Header header_;
  FieldList fields_;
  char* body_ = nullptr;
  size_t body_left_ = 0;
};

}  // namespace sluice::gateway
