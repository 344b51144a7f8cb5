#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// A worker's startup and shutdown hooks (the ASGI lifespan protocol): open a database pool
/// before the first connection, close it after the last. RunWorker runs the startup hooks in
/// order, on its main thread, before it listens: a gateway cannot link to the worker (and
/// answers 503 when no other worker can take a request) until they all succeed. A hook that
/// throws stops the start: the error is logged and the process exits with code 3. On SIGTERM
/// or SIGINT the shutdown hooks run in reverse order after the drain, once the blocking
/// calls finished and the event loops stopped (no consumer runs), and before the process
/// exits; one that throws is logged and the others still run. They also run when the worker
/// cannot listen after its startup hooks succeeded. Hooks may block.
/// Thread-safety: build it before RunWorker; the hooks run on RunWorker's thread.
class Lifespan {
 public:
  using Hook = std::function<void()>;

  Lifespan& OnStartup(std::string name, Hook hook) {
    startup_.emplace_back(std::move(name), std::move(hook));
    return *this;
  }
  Lifespan& OnShutdown(std::string name, Hook hook) {
    shutdown_.emplace_back(std::move(name), std::move(hook));
    return *this;
  }
  const std::vector<std::pair<std::string, Hook>>& startup() const { return startup_; }
  const std::vector<std::pair<std::string, Hook>>& shutdown() const { return shutdown_; }

 private:
  std::vector<std::pair<std::string, Hook>> startup_;
  std::vector<std::pair<std::string, Hook>> shutdown_;
};

}  // namespace sluice
