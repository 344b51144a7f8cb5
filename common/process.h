#pragma once

#include <cstdint>
#include <string>

namespace sluice {

/// "<hostname>-<pid>": the default gateway and worker id.
std::string DefaultProcessId();

/// Monotonic time in nanoseconds, for liveness checks kept in atomics.
int64_t MonotonicNanos();

/// Blocks SIGINT and SIGTERM in the calling thread and every thread started after it (call
/// first thing in main), so WaitForStopSignal can take them; ignores SIGPIPE.
void BlockStopSignals();
/// Waits for SIGINT or SIGTERM; returns the signal.
int WaitForStopSignal();

}  // namespace sluice
