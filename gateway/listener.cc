#include "gateway/listener.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "gateway/http_session.h"
#include "gateway/metrics.h"
#include "gateway/shard.h"
#include "gateway/transport.h"

namespace sluice::gateway {
namespace net = boost::asio;
using net::ip::tcp;

Listener::Listener(const Context& context, std::vector<Shard*> shards)
    : context_(context),
      shards_(std::move(shards)),
      acceptor_(shards_.front()->io()),
      backoff_(shards_.front()->io()) {}

absl::Status Listener::Open(const HostPort& address) {
  boost::system::error_code ec;
  tcp::resolver resolver(acceptor_.get_executor());
  const auto results =
      resolver.resolve(address.host, std::to_string(address.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError("cannot resolve " + address.ToString() + ": " + ec.message());
  }
  const tcp::endpoint endpoint = *results.begin();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError("cannot listen on " + address.ToString() + ": " + ec.message());
  return absl::OkStatus();
}

void Listener::Start() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] { self->Accept(); });
}

void Listener::Stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void Listener::Accept() {
  Shard* shard = shards_[next_++ % shards_.size()];
  acceptor_.async_accept(shard->io(), [self = shared_from_this(), shard](
                                          boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Typically out of descriptors: say so, and accept again after a breath, not in a spin.
      SLUICE_LOG(kWarning, "gateway") << "accept failed: " << ec.message();
      self->backoff_.expires_after(std::chrono::milliseconds(50));
      self->backoff_.async_wait([self](boost::system::error_code ec) {
        if (!ec) self->Accept();
      });
      return;
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      if (self->context_.options.socket_send_buffer > 0) {
        socket.set_option(net::socket_base::send_buffer_size(
                              static_cast<int>(self->context_.options.socket_send_buffer)),
                          ec);
      }
      const Context& context = self->context_;
      context.metrics.accepted.Inc();
      // Past the limit the socket is still served, with a 503 to its first request.
      const bool over_limit = context.metrics.connections.value() >=
                              static_cast<int64_t>(context.options.max_connections);
      net::post(shard->io(), [shard, &context, over_limit, socket = std::move(socket)]() mutable {
        std::make_shared<HttpSession>(
            *shard, context, std::make_unique<SocketTransport>(std::move(socket)), over_limit)
            ->Start();
      });
    }
    self->Accept();
  });
}

}  // namespace sluice::gateway
