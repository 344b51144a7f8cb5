// Worker discovery (Options::discovery) through a scripted resolver: the pool keeps one link
// per address the records name, drains those that vanish, and keeps what it has when a
// resolution fails. The addresses refuse connections; only the pool's bookkeeping is tested.
#include "gateway/worker_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace sluice::gateway {
namespace {

struct Records {
  absl::Mutex mu;
  absl::StatusOr<std::vector<HostPort>> answer ABSL_GUARDED_BY(mu);
  std::atomic<int> resolutions{0};

  void Set(absl::StatusOr<std::vector<HostPort>> next) {
    absl::MutexLock lock(&mu);
    answer = std::move(next);
  }
};

class ScriptedResolver final : public WorkerResolver {
 public:
  explicit ScriptedResolver(Records& records) : records_(records) {}
  void Resolve(Done done) override {
    absl::StatusOr<std::vector<HostPort>> answer;
    {
      absl::MutexLock lock(&records_.mu);
      answer = records_.answer;
    }
    ++records_.resolutions;
    done(std::move(answer));
  }

 private:
  Records& records_;
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Waits (bounded: 10 s, far beyond the 10 ms interval) for `predicate`.
template <class P>
bool Eventually(P predicate) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(WorkerPoolDiscovery, LinksFollowTheRecords) {
  Options options;
  options.discovery = Options::Discovery{"workers.test", 1, std::chrono::milliseconds(10)};
  Records records;
  records.Set(std::vector<HostPort>{{"127.0.0.1", 1}, {"127.0.0.1", 2}, {"127.0.0.1", 2}});
  WorkerPool pool(options, {}, nullptr, [&](boost::asio::io_context&) {
    return std::make_unique<ScriptedResolver>(records);
  });
  pool.Start();
  const std::vector<std::string> first = {"127.0.0.1:1", "127.0.0.1:2"};
  ASSERT_TRUE(Eventually([&] { return Sorted(pool.addresses()) == first; }));
  EXPECT_EQ(pool.discovered(), 2u);  // a repeated record is one link

  records.Set(std::vector<HostPort>{{"127.0.0.1", 2}, {"127.0.0.1", 3}});
  const std::vector<std::string> second = {"127.0.0.1:2", "127.0.0.1:3"};
  ASSERT_TRUE(Eventually([&] { return Sorted(pool.addresses()) == second; }));
  EXPECT_EQ(pool.discovered(), 3u);
  EXPECT_EQ(pool.vanished(), 1u);

  // DNS down: the pool keeps the workers it knows.
  records.Set(absl::UnavailableError("no DNS"));
  const int seen = records.resolutions;
  ASSERT_TRUE(Eventually([&] { return records.resolutions >= seen + 3; }));
  EXPECT_EQ(Sorted(pool.addresses()), second);
  EXPECT_GE(pool.discovery_errors(), 1u);
  EXPECT_EQ(pool.ready_links(), 0u);  // nothing listens there
  pool.Stop();
}

TEST(WorkerPoolDiscovery, AFixedListStaysAsGiven) {
  Options options;
  options.workers = {{"127.0.0.1", 1}};
  WorkerPool pool(options, {});
  pool.Start();
  EXPECT_EQ(pool.addresses(), std::vector<std::string>{"127.0.0.1:1"});
  pool.Stop();
}

}  // namespace
}  // namespace sluice::gateway
