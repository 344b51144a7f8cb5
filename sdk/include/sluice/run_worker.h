#pragma once

#include "sluice/consumer.h"

namespace sluice {

/// Runs a worker process serving `app` until SIGINT or SIGTERM; returns the exit code.
/// Flags: --listen HOST:PORT (gRPC link; port 0 picks one), --capacity N (most instances at
/// once), --threads N, --worker-id NAME. Prints "sluice-worker listening on HOST:PORT" to
/// stdout once serving.
int RunWorker(Application& app, int argc, char** argv);

}  // namespace sluice
