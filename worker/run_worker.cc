#include "sluice/run_worker.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <utility>

#include "common/config_check.h"
#include "common/link_tls.h"
#include "common/log.h"
#include "common/process.h"
#include "sluice/sync.h"
#include "worker/config_check.h"
#include "worker/runtime.h"

namespace sluice {

namespace {

// Runs the hooks in order; false (logged) at the first that throws.
bool RunHooks(const std::vector<std::pair<std::string, Lifespan::Hook>>& hooks,
              std::string_view what, bool stop_at_error) {
  bool ok = true;
  for (const auto& [name, hook] : hooks) {
    try {
      hook();
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "worker") << what << " hook '" << name << "' failed: " << e.what();
      ok = false;
    } catch (...) {
      SLUICE_LOG(kError, "worker") << what << " hook '" << name << "' failed";
      ok = false;
    }
    if (!ok && stop_at_error) return false;
  }
  return ok;
}

}  // namespace

int RunWorker(Application& app, int argc, char** argv, const Lifespan& lifespan) {
  worker::Options options;
  uint32_t window_events = options.receive_window.events();
  uint64_t window_bytes = options.receive_window.bytes();
  CLI::App cli{"sluice worker: runs consumers for sluice gateways"};
  cli.add_option("--listen", options.listen, "HOST:PORT for gateway links (port 0: any)")
      ->capture_default_str();
  cli.add_option("--capacity", options.capacity, "most connections served at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option(
         "--threads", options.threads,
         "consumer threads (0: one per usable core: CPU affinity, capped by the cgroup CPU quota)")
      ->capture_default_str();
  cli.add_option("--worker-id", options.worker_id, "name in logs and metrics")
      ->capture_default_str();
  double close_timeout = std::chrono::duration<double>(options.close_timeout).count();
  cli.add_option("--close-timeout", close_timeout,
                 "seconds a consumer may take to return after its disconnect before it is "
                 "cancelled")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double drain_timeout = std::chrono::duration<double>(options.drain_timeout).count();
  cli.add_option("--drain-timeout", drain_timeout,
                 "on SIGTERM, seconds requests in progress may take to finish (WebSockets "
                 "close with 1012 at once)")
      ->capture_default_str();
  SyncPool::Options sync;
  cli.add_option("--sync-threads", sync.threads,
                 "threads that run blocking consumer code (SyncToAsync, sync consumers)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  cli.add_option("--sync-queue", sync.max_queued,
                 "blocking calls that may wait for a sync thread before SyncPoolFull")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double stall_threshold = std::chrono::duration<double>(options.stall_threshold).count();
  cli.add_option("--stall-threshold", stall_threshold,
                 "seconds a consumer may block an event loop before it is logged and counted "
                 "(0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  std::string admin;
  cli.add_option("--admin", admin, "HOST:PORT serving /metrics and /healthz (off when empty)");
  cli.add_option("--window-events", window_events, "per-connection inbox, in events")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--window-bytes", window_bytes, "per-connection inbox, in bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  LinkTlsFiles link_tls;
  cli.add_option("--link-tls-cert", link_tls.cert,
                 "PEM certificate this worker presents to gateways (mutual TLS on the link: "
                 "gateways must present one the CA signed; with --link-tls-key and "
                 "--link-tls-ca; read at start)");
  cli.add_option("--link-tls-key", link_tls.key, "PEM private key of --link-tls-cert");
  cli.add_option("--link-tls-ca", link_tls.ca,
                 "PEM CA certificates the gateways' certificates must chain to");
  bool check_config = false;
  cli.add_flag("--check-config", check_config,
               "validate the flags, print a one-line summary and exit: 0 valid, 2 not "
               "(binds nothing, runs no startup hook)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code != 0 && HasFlag(argc, argv, "--check-config") ? kConfigErrorExit : code;
  }
  auto tls = LoadLinkTls(link_tls);
  if (!tls.ok()) {
    std::cerr << tls.status().message() << "\n";
    return 2;
  }
  options.link_tls = std::move(*tls);
  if (!admin.empty()) {
    auto address = ParseHostPort(admin);
    if (!address.ok()) {
      std::cerr << "--admin: " << address.status().message() << "\n";
      return 2;
    }
    options.admin = *address;
  }
  options.close_timeout = std::chrono::milliseconds(static_cast<int64_t>(close_timeout * 1000));
  options.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(drain_timeout * 1000));
  options.stall_threshold = std::chrono::milliseconds(static_cast<int64_t>(stall_threshold * 1000));
  options.receive_window.set_events(window_events);
  options.receive_window.set_bytes(window_bytes);
  if (check_config) {
    auto summary = worker::CheckConfig(options);
    if (!summary.ok()) {
      std::cerr << "sluice-worker: config error: " << summary.status().message() << "\n";
      return kConfigErrorExit;
    }
    std::cout << *summary << std::endl;
    return 0;
  }

  ConfigureMutexChecks();
  BlockStopSignals();  // before gRPC starts its threads; waited for below
  try {
    SyncPool::Configure(sync);
  } catch (const std::logic_error&) {
    SLUICE_LOG(kWarning, "worker") << "the SyncPool started before RunWorker; --sync-threads "
                                      "and --sync-queue do not apply";
  }

  // Nothing listens before the startup hooks succeed: no gateway can send a connection.
  if (!RunHooks(lifespan.startup(), "startup", /*stop_at_error=*/true)) return 3;
  worker::Runtime runtime(app, options);
  const auto shutdown = [&lifespan] {
    std::vector<std::pair<std::string, Lifespan::Hook>> hooks(lifespan.shutdown().rbegin(),
                                                              lifespan.shutdown().rend());
    RunHooks(hooks, "shutdown", /*stop_at_error=*/false);
  };
  if (absl::Status status = runtime.Start(); !status.ok()) {
    SLUICE_LOG(kError, "worker") << status;
    shutdown();
    return 1;
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::cout << "sluice-worker listening on " << host << ":" << runtime.port() << std::endl;
  if (options.admin) {
    std::cout << "sluice-worker admin on " << options.admin->host << ":" << runtime.admin_port()
              << std::endl;
  }
  SLUICE_LOG(kInfo, "worker") << "worker " << options.worker_id << " serving, capacity "
                              << options.capacity;
  const int signal = WaitForStopSignal();
  SLUICE_LOG(kInfo, "worker") << "signal " << signal << ": stopping";
  runtime.Drain();
  // Blocking calls finish while the loops still run, so they can still reach their
  // connection; calls made after this throw Disconnected.
  SyncPool::ShutdownDefault();
  runtime.Stop();
  // Last: no consumer runs any more, so none uses what the hooks close.
  shutdown();
  return 0;
}

}  // namespace sluice
