#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace sluice::gateway {

/// Measures how long a connection's client-bound queue stays full (its worker out of credit):
/// armed when the worker spends its last credit, disarmed when credit is granted back. If it
/// stays armed for the timeout, `on_expired` runs: the client is too slow and gets closed.
/// Holds a timer only while armed. Thread-safety: the connection's shard thread only.
class StallTimer final {
 public:
  template <class Handler>
  void Arm(const boost::asio::any_io_executor& executor,
           std::chrono::steady_clock::duration timeout, Handler on_expired) {
    if (timer_) return;
    timer_ = std::make_unique<boost::asio::steady_timer>(executor, timeout);
    timer_->async_wait([on_expired = std::move(on_expired)](boost::system::error_code ec) mutable {
      if (!ec) on_expired();
    });
  }
  void Disarm() { timer_.reset(); }  // the pending wait completes with operation_aborted
  bool armed() const { return timer_ != nullptr; }

 private:
  std::unique_ptr<boost::asio::steady_timer> timer_;
};

}  // namespace sluice::gateway
