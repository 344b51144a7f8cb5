#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/host_port.h"

namespace sluice {

/// The operator's HTTP port (`--admin HOST:PORT`): GET-only plain routes such as /metrics,
/// /healthz and /readyz, served on a thread of its own so it answers even when the data path
/// is saturated. At most 64 connections at once, 8 KiB of request header, 5 s per request.
/// Thread-safety: Route before Start; handlers run on the admin thread.
class AdminServer final {
 public:
  struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  using Handler = std::function<Response()>;

  AdminServer();
  ~AdminServer();

  void Route(const std::string& path, Handler handler);
  absl::Status Start(const HostPort& address);
  void Stop();
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::map<std::string, Handler> routes_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace sluice
