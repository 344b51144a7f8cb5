#pragma once

#include "gateway/options.h"

namespace sluice::gateway {

struct Metrics;
class WorkerPool;

/// What every client session needs from its gateway. Outlives all sessions.
struct Context {
  const Options& options;
  WorkerPool& pool;
  Metrics& metrics;
};

}  // namespace sluice::gateway
