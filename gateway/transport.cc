#include "gateway/transport.h"

#include <boost/asio/write.hpp>

namespace sluice::gateway {
namespace net = boost::asio;

SocketTransport::SocketTransport(net::ip::tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);  // ReadSome never blocks
}

void SocketTransport::WaitReadable(WaitHandler done) {
  socket_.async_wait(net::ip::tcp::socket::wait_read,
                     [done = std::move(done)](boost::system::error_code ec) mutable { done(ec); });
}

size_t SocketTransport::ReadSome(net::mutable_buffer buffer, boost::system::error_code& ec) {
  return socket_.read_some(buffer, ec);
}

void SocketTransport::Write(const std::vector<net::const_buffer>& buffers, WriteHandler done) {
  // Asio tries the write at once; only what the kernel does not take waits for the reactor.
  net::async_write(
      socket_, buffers,
      [done = std::move(done)](boost::system::error_code ec, size_t n) mutable { done(ec, n); });
}

void SocketTransport::ShutdownSend() {
  boost::system::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

void SocketTransport::Close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

}  // namespace sluice::gateway
