#include "common/config_check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice {
namespace {

TEST(ConfigCheckTest, BindAddressTakesIpsAndNamesUnlessIpOnly) {
  EXPECT_TRUE(CheckBindAddress("--listen", {"0.0.0.0", 8000}, false).ok());
  EXPECT_TRUE(CheckBindAddress("--listen", {"::", 0}, false).ok());
  EXPECT_TRUE(CheckBindAddress("--listen", {"localhost", 8000}, false).ok());
  EXPECT_TRUE(CheckBindAddress("--admin", {"127.0.0.1", 9100}, true).ok());
  const absl::Status name = CheckBindAddress("--admin", {"localhost", 9100}, true);
  EXPECT_FALSE(name.ok());
  EXPECT_EQ(name.message(), "--admin: \"localhost\" is not an IP address");
  EXPECT_EQ(CheckBindAddress("--listen", {"bad_host", 8000}, false).message(),
            "--listen: \"bad_host\" is neither an IP address nor a host name");
}

TEST(ConfigCheckTest, PeerAddressNeedsANameAndAPort) {
  EXPECT_TRUE(CheckPeerAddress("--workers", {"sluice-worker.sluice.svc.cluster.local", 8001}).ok());
  EXPECT_TRUE(
      CheckPeerAddress("--workers", {"sluice-worker.sluice.svc.cluster.local.", 8001}).ok());
  EXPECT_TRUE(CheckPeerAddress("--workers", {"10.0.0.7", 8001}).ok());
  EXPECT_EQ(CheckPeerAddress("--workers", {"worker", 0}).message(),
            "--workers: worker:0 has port 0");
  for (const char* host : {"-worker", "worker-", "a..b", "a b", "under_score", "x..", "."}) {
    EXPECT_FALSE(CheckPeerAddress("--workers", {host, 8001}).ok()) << host;
  }
  EXPECT_FALSE(CheckPeerAddress("--workers", {std::string(64, 'a'), 8001}).ok());
  EXPECT_TRUE(CheckPeerAddress("--workers", {std::string(63, 'a'), 8001}).ok());
}

TEST(ConfigCheckTest, ReadableFile) {
  const std::filesystem::path dir = ::testing::TempDir();
  const std::string file = (dir / "config_check_test.pem").string();
  std::ofstream(file) << "x";
  EXPECT_TRUE(CheckReadableFile("--link-tls-cert", file).ok());
  EXPECT_EQ(CheckReadableFile("--link-tls-cert", file + ".missing").message(),
            "--link-tls-cert: " + file + ".missing does not exist");
  EXPECT_EQ(CheckReadableFile("--link-tls-cert", dir.string()).message(),
            "--link-tls-cert: " + dir.string() + " is not a file");
  std::filesystem::remove(file);
}

TEST(ConfigCheckTest, HasFlagLooksAtWholeArguments) {
  const char* argv[] = {"prog", "--listen", "x", "--check-config"};
  EXPECT_TRUE(HasFlag(4, argv, "--check-config"));
  EXPECT_FALSE(HasFlag(3, argv, "--check-config"));
  const char* prefix[] = {"prog", "--check-configs"};
  EXPECT_FALSE(HasFlag(2, prefix, "--check-config"));
}

}  // namespace
}  // namespace sluice
