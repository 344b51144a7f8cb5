#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// "<hostname>-<pid>": the default gateway and worker id.
std::string DefaultProcessId();

/// The cores this process may use: the CPUs it is allowed to run on, capped by its cgroup's
/// CPU quota (a Kubernetes CPU limit), rounded up; at least 1. The default for --threads:
/// a pod limited to 2 CPUs on a 64-core node runs 2 loops, not 64.
unsigned UsableCores();
/// Cores a cgroup CPU quota allows, rounded up: `cpu_max` is cgroup v2's cpu.max ("150000
/// 100000", or "max 100000" for none). nullopt when there is no quota or it is unreadable.
std::optional<unsigned> CoresFromCpuMax(std::string_view cpu_max);

/// Monotonic time in nanoseconds, for liveness checks kept in atomics.
int64_t MonotonicNanos();

/// Blocks SIGINT and SIGTERM in the calling thread and every thread started after it (call
/// first thing in main), so WaitForStopSignal can take them; ignores SIGPIPE.
void BlockStopSignals();
/// Waits for SIGINT or SIGTERM; returns the signal.
int WaitForStopSignal();

/// In a release build (NDEBUG), turns off Abseil's Mutex deadlock detection, which Debian's
/// Abseil leaves on: it takes a process-wide lock in every Mutex::Lock. Debug and sanitizer
/// builds keep it. Call first thing in main.
void ConfigureMutexChecks();

}  // namespace sluice
