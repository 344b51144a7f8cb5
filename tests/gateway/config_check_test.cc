#include "gateway/config_check.h"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

Options Valid() {
  Options options;
  options.listen = {"0.0.0.0", 8000};
  options.admin = HostPort{"0.0.0.0", 9100};
  options.discovery = Options::Discovery{"sluice-worker.sluice.svc.cluster.local", 8001,
                                         std::chrono::milliseconds(5000)};
  options.layer = "redis://sluice-redis.sluice.svc.cluster.local:6379/0";
  options.drain_delay = std::chrono::seconds(5);
  options.drain_timeout = std::chrono::seconds(25);
  return options;
}

TEST(GatewayConfigCheckTest, SummaryOfAValidConfig) {
  const auto summary = CheckConfig(Valid());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(*summary,
            "sluice-gateway: config ok: listen 0.0.0.0:8000, admin 0.0.0.0:9100, workers "
            "dns:sluice-worker.sluice.svc.cluster.local:8001 every 5 s, layer "
            "redis://sluice-redis.sluice.svc.cluster.local:6379/0, threads auto, drain-delay 5 s, "
            "drain-timeout 25 s");
}

TEST(GatewayConfigCheckTest, FixedWorkersAndNoAdmin) {
  Options options = Valid();
  options.discovery.reset();
  options.workers = {{"10.0.0.1", 8001}, {"worker-b", 8001}};
  options.admin.reset();
  options.layer = "memory";
  options.threads = 2;
  const auto summary = CheckConfig(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_NE(summary->find("admin off, workers 10.0.0.1:8001,worker-b:8001, layer memory, "
                          "threads 2"),
            std::string::npos)
      << *summary;
}

TEST(GatewayConfigCheckTest, EachErrorNamesItsFlag) {
  const auto error = [](void (*change)(Options&)) {
    Options options = Valid();
    change(options);
    const auto summary = CheckConfig(options);
    return summary.ok() ? std::string("ok") : std::string(summary.status().message());
  };
  EXPECT_EQ(error([](Options& o) {
              o.admin = HostPort{"pod-name", 9100};
            }),
            "--admin: \"pod-name\" is not an IP address");
  EXPECT_EQ(error([](Options& o) {
              o.listen = {"no_such host", 8000};
            }),
            "--listen: \"no_such host\" is neither an IP address nor a host name");
  EXPECT_EQ(error([](Options& o) { o.discovery->name = "sluice_worker"; }),
            "--workers: \"sluice_worker\" is neither an IP address nor a host name");
  EXPECT_EQ(error([](Options& o) {
              o.discovery.reset();
              o.workers = {{"worker", 0}};
            }),
            "--workers: worker:0 has port 0");
  EXPECT_EQ(error([](Options& o) { o.discovery.reset(); }), "--workers: none given");
  EXPECT_EQ(error([](Options& o) { o.layer = "redis://user@redis:6379"; }),
            "--layer: expected memory, none or redis://HOST[:PORT][/DB], got "
            "\"redis://user@redis:6379\"");
  // An environment variable the kubelet could not expand reaches the process as written.
  EXPECT_EQ(error([](Options& o) {
              o.layer = "redis://sluice-redis.$(POD_NAMESPACE).svc.cluster.local:6379/0";
            }),
            "--layer: \"sluice-redis.$(POD_NAMESPACE).svc.cluster.local\" is neither an IP "
            "address nor a host name");
  EXPECT_EQ(error([](Options& o) { o.layer = "none"; }), "ok");
  EXPECT_EQ(error([](Options& o) { o.max_connections = 0; }),
            "--max-connections: 0 admits no client");
}

}  // namespace
}  // namespace sluice::gateway
