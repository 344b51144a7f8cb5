#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "sluice/consumer.h"

namespace sluice {

/// An HTTP consumer (Channels' AsyncHttpConsumer): Handle() reads the request body (whole or
/// in chunks, as it streams in under credit) and sends the response, whole or streamed
/// (long-poll, Server-Sent Events). When Handle returns without a complete response the
/// runtime answers 500 (no response started) or aborts the response.
/// Thread-safety and lifetime: as Consumer.
class HttpConsumer : public Consumer {
 public:
  Task<void> Run() final;

 protected:
  virtual Task<void> Handle() = 0;

  /// The next chunk of the request body; nullopt once the body has ended. Throws
  /// Disconnected when the client went away.
  Task<std::optional<std::string>> ReadChunk();
  /// The rest of the request body, at most `max_bytes` (std::length_error past that).
  Task<std::string> ReadBody(size_t max_bytes = 16 << 20);

  /// A complete response in one call; adds content-type when given and absent.
  Task<void> Respond(int status, std::string body, Headers headers = {},
                     std::string_view content_type = "text/plain; charset=utf-8");
  Task<void> StartResponse(int status, Headers headers);
  /// A piece of a streamed response; `more` false ends it.
  Task<void> SendBody(std::string chunk, bool more);

  bool response_started() const { return started_; }

 private:
  bool body_done_ = false;
  bool started_ = false;
};

}  // namespace sluice
