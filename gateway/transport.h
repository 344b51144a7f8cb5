#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace sluice::gateway {

/// A client connection's byte stream, as the sessions use it. Reading is readiness-based:
/// a session waits until bytes can be read, then takes them without blocking into its
/// shard's scratch buffer, so an idle connection holds no read buffer at all.
/// The seam between sessions and sockets: SocketTransport in production, a transport over
/// beast::test::stream in tests. Thread-safety: the owning session's shard thread only.
class Transport {
 public:
  using WaitHandler = absl::AnyInvocable<void(boost::system::error_code)>;
  using WriteHandler = absl::AnyInvocable<void(boost::system::error_code, size_t)>;

  virtual ~Transport() = default;

  virtual boost::asio::any_io_executor executor() = 0;
  /// Calls `done` once bytes (or end of stream, or an error) can be read. One at a time.
  virtual void WaitReadable(WaitHandler done) = 0;
  /// Reads what is available without blocking; `would_block` when nothing is.
  virtual size_t ReadSome(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) = 0;
  /// Writes all of `buffers`; the bytes they point at must live until `done`. One at a time.
  virtual void Write(const std::vector<boost::asio::const_buffer>& buffers, WriteHandler done) = 0;
  /// Sends FIN after what was written (reads go on: lingering close).
  virtual void ShutdownSend() = 0;
  /// Closes the connection; pending operations complete with operation_aborted.
  virtual void Close() = 0;
  virtual boost::asio::ip::tcp::endpoint remote_endpoint(boost::system::error_code& ec) = 0;
  virtual boost::asio::ip::tcp::endpoint local_endpoint(boost::system::error_code& ec) = 0;
};

/// A TCP socket.
class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(boost::asio::ip::tcp::socket socket);

  boost::asio::any_io_executor executor() override { return socket_.get_executor(); }
  void WaitReadable(WaitHandler done) override;
  size_t ReadSome(boost::asio::mutable_buffer buffer, boost::system::error_code& ec) override;
  void Write(const std::vector<boost::asio::const_buffer>& buffers, WriteHandler done) override;
  void ShutdownSend() override;
  void Close() override;
  boost::asio::ip::tcp::endpoint remote_endpoint(boost::system::error_code& ec) override {
    return socket_.remote_endpoint(ec);
  }
  boost::asio::ip::tcp::endpoint local_endpoint(boost::system::error_code& ec) override {
    return socket_.local_endpoint(ec);
  }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace sluice::gateway
