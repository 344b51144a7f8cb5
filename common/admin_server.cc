#include "common/admin_server.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace sluice {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;

namespace {
constexpr int kMaxConnections = 64;
}  // namespace

struct AdminServer::Impl {
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::atomic<int> connections{0};
};

AdminServer::AdminServer() : impl_(std::make_unique<Impl>()) {}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Route(const std::string& path, Handler handler) {
  routes_[path] = std::move(handler);
}

namespace {

net::awaitable<void> Serve(tcp::socket socket,
                           const std::map<std::string, AdminServer::Handler>& routes,
                           std::atomic<int>& connections) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8 * 1024);
    stream.expires_after(std::chrono::seconds(5));
    auto [ec, n] =
        co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
    if (ec) break;
    const auto& request = parser.get();
    http::response<http::string_body> response;
    response.version(request.version());
    const std::string path(request.target().substr(0, request.target().find('?')));
    const auto route = routes.find(path);
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.set(http::field::allow, "GET, HEAD");
      response.body() = "GET only\n";
    } else if (route == routes.end()) {
      response.result(http::status::not_found);
      response.body() = "not found\n";
    } else {
      AdminServer::Response answer = route->second();
      response.result(answer.status);
      response.set(http::field::content_type, answer.content_type);
      response.body() = std::move(answer.body);
    }
    if (!response.has_content_length()) response.prepare_payload();
    response.keep_alive(request.keep_alive());
    auto [write_ec, written] =
        co_await http::async_write(stream, response, net::as_tuple(net::use_awaitable));
    if (write_ec || !response.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  connections.fetch_sub(1);
}

net::awaitable<void> Accept(tcp::acceptor& acceptor,
                            const std::map<std::string, AdminServer::Handler>& routes,
                            std::atomic<int>& connections) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;
    if (connections.load() >= kMaxConnections) continue;  // socket closes here
    connections.fetch_add(1);
    net::co_spawn(acceptor.get_executor(), Serve(std::move(socket), routes, connections),
                  net::detached);
  }
}

}  // namespace

absl::Status AdminServer::Start(const HostPort& address) {
  boost::system::error_code ec;
  const auto ip = net::ip::make_address(address.host, ec);
  if (ec) return absl::InvalidArgumentError("admin address must be an IP: " + address.host);
  const tcp::endpoint endpoint(ip, address.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return absl::UnavailableError("cannot listen on " + address.ToString() + ": " + ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  net::co_spawn(impl_->io, Accept(impl_->acceptor, routes_, impl_->connections), net::detached);
  thread_ = std::thread([this] { impl_->io.run(); });
  return absl::OkStatus();
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  impl_->io.stop();
  thread_.join();
}

}  // namespace sluice
