#pragma once

#include "gateway/options.h"

namespace sluice::gateway {

class WorkerPool;

/// What every client session needs from its gateway. Outlives all sessions.
struct Context {
  const Options& options;
  WorkerPool& pool;
};

}  // namespace sluice::gateway
