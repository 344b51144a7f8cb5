#include "common/process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace sluice {
namespace {

TEST(CoresFromCpuMaxTest, RoundsTheQuotaUp) {
  EXPECT_EQ(CoresFromCpuMax("200000 100000"), 2u);
  EXPECT_EQ(CoresFromCpuMax("150000 100000"), 2u);
  EXPECT_EQ(CoresFromCpuMax("50000 100000"), 1u);  // half a core still needs a loop
}

TEST(CoresFromCpuMaxTest, NoQuotaOrNonsenseIsNoLimit) {
  EXPECT_EQ(CoresFromCpuMax("max 100000"), std::nullopt);
  EXPECT_EQ(CoresFromCpuMax("-1 100000"), std::nullopt);  // cgroup v1's "none"
  EXPECT_EQ(CoresFromCpuMax(""), std::nullopt);
  EXPECT_EQ(CoresFromCpuMax(" "), std::nullopt);
  EXPECT_EQ(CoresFromCpuMax("100000 0"), std::nullopt);
  EXPECT_EQ(CoresFromCpuMax("12x 100000"), std::nullopt);
}

TEST(UsableCoresTest, AtLeastOneAndNoMoreThanTheMachineHas) {
  const unsigned cores = UsableCores();
  EXPECT_GE(cores, 1u);
  EXPECT_LE(cores, std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace sluice
