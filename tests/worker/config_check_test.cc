#include "worker/config_check.h"

#include <gtest/gtest.h>

namespace sluice::worker {
namespace {

TEST(WorkerConfigCheckTest, SummaryOfAValidConfig) {
  Options options;
  options.listen = "0.0.0.0:8001";
  options.admin = HostPort{"0.0.0.0", 9101};
  options.capacity = 5000;
  options.drain_timeout = std::chrono::milliseconds(25500);
  const auto summary = CheckConfig(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(*summary,
            "sluice-worker: config ok: listen 0.0.0.0:8001, admin 0.0.0.0:9101, capacity 5000, "
            "threads auto, drain-timeout 25.5 s, close-timeout 10 s");
}

TEST(WorkerConfigCheckTest, ListenAndAdmin) {
  Options options;
  options.listen = "[::]:8001";
  EXPECT_TRUE(CheckConfig(options).ok());
  options.listen = "8001";
  EXPECT_EQ(CheckConfig(options).status().message(), "--listen: expected HOST:PORT, got \"8001\"");
  options.listen = "bad_host:8001";
  EXPECT_EQ(CheckConfig(options).status().message(),
            "--listen: \"bad_host\" is neither an IP address nor a host name");
  options.listen = "0.0.0.0:8001";
  options.admin = HostPort{"localhost", 9101};
  EXPECT_EQ(CheckConfig(options).status().message(), "--admin: \"localhost\" is not an IP address");
}

}  // namespace
}  // namespace sluice::worker
