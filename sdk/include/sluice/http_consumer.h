#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "sluice/consumer.h"

namespace sluice {

/// A request body read whole (HttpConsumer::ReadWholeBody). It is held in memory up to a
/// threshold and, past it, in an unlinked temporary file (under $TMPDIR, else /tmp), so a
/// large upload costs disk, not memory, and the file disappears with the object. File I/O
/// is done in place, on the consumer's thread (page-cache speed; a slow disk slows that
/// thread's consumers). Thread-safety: none. Lifetime: move-only; owns its file.
class RequestBody final {
 public:
  RequestBody() = default;
  RequestBody(RequestBody&& other) noexcept;
  RequestBody& operator=(RequestBody&& other) noexcept;
  ~RequestBody();

  size_t size() const { return size_; }
  /// Whether it spilled to a file.
  bool spooled() const { return fd_ >= 0; }
  /// Up to `n` bytes from `offset` (fewer at the end). Throws std::system_error on an I/O
  /// error.
  std::string Read(size_t offset, size_t n) const;
  /// The whole body as one string (brings a spooled body back into memory).
  std::string ToString() const { return Read(0, size_); }

  /// Appends; past `spool_threshold` bytes, moves to a temporary file.
  void Append(std::string_view bytes, size_t spool_threshold);

 private:
  std::string memory_;
  int fd_ = -1;
  size_t size_ = 0;
};

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
  /// The rest of the request body, at most `max_bytes` (std::length_error past that), held
  /// in memory up to `spool_threshold` bytes and in a temporary file past it. Reading a body
  /// whole before answering is what lets clients that send everything before they read
  /// (most HTTP libraries) get their answer for any body size.
  Task<RequestBody> ReadWholeBody(size_t max_bytes = 64 << 20, size_t spool_threshold = 1 << 20);

  /// Handles channel-layer messages (their On() handlers run) until `done()` holds (true)
  /// or `timeout` passes (false): how a request waits for an answer on its channel_name().
  /// Throws Disconnected when the client leaves; request body pieces not read yet are
  /// dropped.
  Task<bool> DispatchUntil(std::function<bool()> done, std::chrono::steady_clock::duration timeout);

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
