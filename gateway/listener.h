#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "common/host_port.h"
#include "gateway/context.h"

namespace sluice::gateway {

class Shard;

/// Accepts client connections on the first shard's loop and hands each to the next shard in
/// turn, where its HttpSession lives from then on.
/// Thread-safety: Open before the loops run; Stop from any thread.
class Listener final : public std::enable_shared_from_this<Listener> {
 public:
  Listener(const Context& context, std::vector<Shard*> shards);
  absl::Status Open(const HostPort& address);
  void Start();
  void Stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void Accept();

  const Context& context_;
  const std::vector<Shard*> shards_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  size_t next_ = 0;
};

}  // namespace sluice::gateway
