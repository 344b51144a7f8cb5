#pragma once

#include "sluice/consumer.h"
#include "sluice/lifespan.h"

namespace sluice {

/// Runs a worker process serving `app` until SIGINT or SIGTERM; returns the exit code (0; 2
/// for bad flags, 1 when it cannot listen, 3 when a startup hook failed). Runs `lifespan`'s
/// hooks around serving. Flags: --listen HOST:PORT (gRPC link; port 0 picks one), --capacity
/// N (most instances at once), --threads N, --sync-threads N (SyncToAsync's pool),
/// --stall-threshold SECONDS (the loop watchdog), --worker-id NAME, and more (--help).
/// Prints "sluice-worker listening on HOST:PORT" to stdout once serving.
/// Thread-safety: call once per process, from main. Lifetime: `app` and `lifespan` must
/// outlive the call (they do when they are main's locals).
int RunWorker(Application& app, int argc, char** argv, const Lifespan& lifespan = Lifespan());

}  // namespace sluice
