// sluice-bench-direct: the benchmark's yardstick. It serves the demo's benchmark routes
// (GET /hello, WebSocket echo at /ws/echo, the chat room /ws/chat/{room} that sends each text
// to every member) straight from Boost.Beast, with no hop, so the
// benchmark can say what sluice's gateway-worker hop costs. It is written the way a good
// single-threaded Beast server is: one io_context run by one thread, one session object per
// connection, the read buffer kept across requests and messages, responses written from the
// session without copies. It has no timeouts and no limits beyond Beast's parser limits: a
// yardstick, not a server to deploy.

#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr std::string_view kHello = "Hello, world";
// The gateway's defaults, so both refuse the same requests.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 64 << 20;
constexpr std::size_t kMaxWebSocketMessage = 1 << 20;
// Chat messages waiting for one member's socket; a member further behind is closed.
constexpr std::size_t kMaxQueued = 1024;
constexpr std::string_view kChatPrefix = "/ws/chat/";

// One WebSocket: read a message into the kept buffer, write the same bytes back with the
// same opcode, repeat. One read and one write at a time, as Beast requires.
class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  explicit WebSocketSession(tcp::socket socket) : ws_(std::move(socket)) {}

  // Beast builds the handshake response from the request before returning, so the request
  // need not outlive the call.
  void Start(const http::request<http::string_body>& request) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(kMaxWebSocketMessage);
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Read();
    });
  }

 private:
  void Read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->OnRead(ec);
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return;  // closed by the client or broken: the session ends with its last handler
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->buffer_.consume(self->buffer_.size());
      self->Read();
    });
  }

  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
};

class ChatSession;
// The chat rooms' members, by room name (one thread: no lock).
using Rooms = std::unordered_map<std::string, std::unordered_set<ChatSession*>>;

// A member of a chat room: each text it reads is queued to every member of the room, itself
// included; a member more than kMaxQueued messages behind is closed.
class ChatSession : public std::enable_shared_from_this<ChatSession> {
 public:
  ChatSession(tcp::socket socket, Rooms& rooms, std::string room)
      : ws_(std::move(socket)), rooms_(rooms), room_(std::move(room)) {}
  ~ChatSession() {
    auto it = rooms_.find(room_);
    if (it == rooms_.end()) return;
    it->second.erase(this);
    if (it->second.empty()) rooms_.erase(it);
  }

  void Start(const http::request<http::string_body>& request) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(kMaxWebSocketMessage);
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->rooms_[self->room_].insert(self.get());
      self->Read();
    });
  }

 private:
  void Read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      const auto message =
          std::make_shared<const std::string>(beast::buffers_to_string(self->buffer_.data()));
      self->buffer_.consume(self->buffer_.size());
      // A member closed for being too far behind leaves the room when its handlers end,
      // later: the set does not change under this loop.
      for (ChatSession* member : self->rooms_[self->room_]) member->Enqueue(message);
      self->Read();
    });
  }

  void Enqueue(const std::shared_ptr<const std::string>& message) {
    if (queue_.size() >= kMaxQueued) {
      beast::get_lowest_layer(ws_).close();  // too far behind: the pending operations end
      return;
    }
    queue_.push_back(message);
    if (queue_.size() == 1) WriteQueued();
  }

  void WriteQueued() {
    ws_.async_write(net::buffer(*queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return self->queue_.clear();
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->WriteQueued();
                    });
  }

  websocket::stream<tcp::socket> ws_;
  Rooms& rooms_;
  const std::string room_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
};

// One HTTP/1.1 connection: keep-alive requests one after the other (pipelined requests wait
// in the buffer for their turn); an upgrade to /ws/echo hands the socket to a
// WebSocketSession.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Rooms& rooms) : socket_(std::move(socket)), rooms_(rooms) {}

  void Start() { Read(); }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    http::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (ec) return;
    const http::request<http::string_body>& request = parser_->get();
    if (websocket::is_upgrade(request)) {
      if (request.target() == "/ws/echo") {
        std::make_shared<WebSocketSession>(std::move(socket_))->Start(request);
        return;
      }
      const std::string_view target = request.target();
      if (target.size() > kChatPrefix.size() &&
          target.substr(0, kChatPrefix.size()) == kChatPrefix) {
        std::make_shared<ChatSession>(std::move(socket_), rooms_,
                                      std::string(target.substr(kChatPrefix.size())))
            ->Start(request);
        return;
      }
      return Respond(request, http::status::not_found, "Not found");
    }
    if (request.target() != "/hello") {
      return Respond(request, http::status::not_found, "Not found");
    }
    if (request.method() != http::verb::get) {
      return Respond(request, http::status::method_not_allowed, "Method not allowed");
    }
    Respond(request, http::status::ok, kHello);
  }

  void Respond(const http::request<http::string_body>& request, http::status status,
               std::string_view body) {
    response_.emplace(status, request.version());
    response_->set(http::field::content_type, "text/plain; charset=utf-8");
    response_->keep_alive(request.keep_alive());
    response_->body() = body;  // "Hello, world" fits the string's inline storage
    response_->prepare_payload();
    http::async_write(socket_, *response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (!self->response_->keep_alive()) return self->Shutdown();
                        self->Read();
                      });
  }

  void Shutdown() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

  tcp::socket socket_;
  Rooms& rooms_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& io, tcp::acceptor& acceptor, Rooms& rooms)
      : io_(io), acceptor_(acceptor), rooms_(rooms), backoff_(io) {}

  void Accept() {
    acceptor_.async_accept(
        io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
          if (ec == net::error::operation_aborted) return;
          if (ec) {
            // Typically out of descriptors: say so, and accept again after a breath, not in a spin.
            std::cerr << "sluice-bench-direct: accept failed: " << ec.message() << "\n";
            self->backoff_.expires_after(std::chrono::milliseconds(50));
            self->backoff_.async_wait([self](beast::error_code ec) {
              if (!ec) self->Accept();
            });
            return;
          }
          socket.set_option(tcp::no_delay(true), ec);  // as the gateway does
          std::make_shared<HttpSession>(std::move(socket), self->rooms_)->Start();
          self->Accept();
        });
  }

 private:
  net::io_context& io_;
  tcp::acceptor& acceptor_;
  Rooms& rooms_;
  net::steady_timer backoff_;
};

// Each held socket is a descriptor: take the hard limit, as a server tuned for many idle
// WebSockets would.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Usage(int code) {
  (code == 0 ? std::cout : std::cerr)
      << "usage: sluice-bench-direct [--listen HOST:PORT]\n"
         "Serves GET /hello, a WebSocket echo at /ws/echo and chat rooms at /ws/chat/{room}\n"
         "from one thread, no hop: the benchmark's baseline. --listen defaults to\n"
         "127.0.0.1:8080; port 0 picks a free port.\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:8080";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Usage(0);
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else {
      return Usage(2);
    }
  }
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Usage(2);
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  RaiseDescriptorLimit();
  Rooms rooms;            // outlives the io_context, whose sessions leave it as they end
  net::io_context io(1);  // one thread: lets Asio skip some locking
  tcp::acceptor acceptor(io);
  beast::error_code ec;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    std::cerr << "sluice-bench-direct: cannot resolve " << listen << ": " << ec.message() << "\n";
    return 1;
  }
  const tcp::endpoint endpoint = *results.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "sluice-bench-direct: cannot listen on " << listen << ": " << ec.message() << "\n";
    return 1;
  }

  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });
  std::make_shared<Listener>(io, acceptor, rooms)->Accept();

  std::cout << "sluice-bench-direct listening on " << host << ":"
            << acceptor.local_endpoint().port() << std::endl;
  io.run();
  return 0;
}
