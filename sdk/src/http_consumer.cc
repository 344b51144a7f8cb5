#include "sluice/http_consumer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include "common/text.h"

namespace sluice {

Task<void> HttpConsumer::Run() {
  co_await JoinGroups();
  co_await Handle();
}

Task<std::optional<std::string>> HttpConsumer::ReadChunk() {
  while (!body_done_) {
    Event event = co_await Receive();
    if (auto* request = std::get_if<HttpRequest>(&event)) {
      body_done_ = !request->more_body;
      if (!request->body.empty()) co_return std::move(request->body);
    } else if (auto* message = std::get_if<LayerMessage>(&event)) {
      co_await Dispatch(*message);
    } else if (std::holds_alternative<HttpDisconnect>(event)) {
      throw Disconnected("client disconnected");
    } else {
      throw std::logic_error("unexpected event for HTTP: " + std::string(TypeName(event)));
    }
  }
  co_return std::nullopt;
}

Task<bool> HttpConsumer::DispatchUntil(std::function<bool()> done,
                                       std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    std::optional<Event> event = co_await ReceiveUntil(deadline);
    if (!event) co_return false;
    if (auto* message = std::get_if<LayerMessage>(&*event)) {
      co_await Dispatch(*message);
    } else if (auto* request = std::get_if<HttpRequest>(&*event)) {
      body_done_ = !request->more_body;  // a body nobody read: dropped
    } else if (std::holds_alternative<HttpDisconnect>(*event)) {
      throw Disconnected("client disconnected");
    } else {
      throw std::logic_error("unexpected event for HTTP: " + std::string(TypeName(*event)));
    }
  }
  co_return true;
}

Task<std::string> HttpConsumer::ReadBody(size_t max_bytes) {
  std::string body;
  while (auto chunk = co_await ReadChunk()) {
    if (body.size() + chunk->size() > max_bytes) throw std::length_error("request body too large");
    body += *chunk;
  }
  co_return body;
}

RequestBody::RequestBody(RequestBody&& other) noexcept
    : memory_(std::move(other.memory_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)) {}

RequestBody& RequestBody::operator=(RequestBody&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    memory_ = std::move(other.memory_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

RequestBody::~RequestBody() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

[[noreturn]] void ThrowErrno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int OpenTemporaryFile() {
  const char* dir = std::getenv("TMPDIR");
  if (dir == nullptr || *dir == '\0') dir = "/tmp";
  // Unlinked from the start: the file vanishes with its descriptor, even after a crash.
  const int fd = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) ThrowErrno("cannot create a temporary file for a request body");
  return fd;
}

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t written = ::write(fd, data, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot spool a request body");
    }
    data += written;
    n -= static_cast<size_t>(written);
  }
}

}  // namespace

void RequestBody::Append(std::string_view bytes, size_t spool_threshold) {
  if (fd_ < 0 && size_ + bytes.size() > spool_threshold) {
    fd_ = OpenTemporaryFile();
    WriteAll(fd_, memory_.data(), memory_.size());
    std::string().swap(memory_);
  }
  if (fd_ >= 0) {
    WriteAll(fd_, bytes.data(), bytes.size());
  } else {
    memory_.append(bytes);
  }
  size_ += bytes.size();
}

std::string RequestBody::Read(size_t offset, size_t n) const {
  if (offset >= size_) return {};
  n = std::min(n, size_ - offset);
  if (fd_ < 0) return memory_.substr(offset, n);
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    const ssize_t got =
        ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot read a spooled request body");
    }
    if (got == 0) throw std::runtime_error("spooled request body is shorter than expected");
    done += static_cast<size_t>(got);
  }
  return out;
}

Task<RequestBody> HttpConsumer::ReadWholeBody(size_t max_bytes, size_t spool_threshold) {
  RequestBody body;
  while (auto chunk = co_await ReadChunk()) {
    if (body.size() + chunk->size() > max_bytes) throw std::length_error("request body too large");
    body.Append(*chunk, spool_threshold);
  }
  co_return body;
}

Task<void> HttpConsumer::Respond(int status, std::string body, Headers headers,
                                 std::string_view content_type) {
  bool has_type = false;
  for (const auto& header : headers) has_type |= IEquals(header.first, "content-type");
  if (!has_type && !content_type.empty()) headers.emplace_back("content-type", content_type);
  co_await StartResponse(status, std::move(headers));
  co_await SendBody(std::move(body), false);
}

// StartResponse and SendBody are not coroutines themselves: they hand back Send's awaitable,
// so a response costs no coroutine frame of theirs.
Task<void> HttpConsumer::StartResponse(int status, Headers headers) {
  if (started_) throw std::logic_error("response already started");
  started_ = true;
  return Send(HttpResponseStart{status, std::move(headers), false});
}

Task<void> HttpConsumer::SendBody(std::string chunk, bool more) {
  return Send(HttpResponseBody{std::move(chunk), more});
}

}  // namespace sluice
