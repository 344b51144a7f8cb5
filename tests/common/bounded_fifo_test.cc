#include "common/bounded_fifo.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace sluice {
namespace {

// Counts live instances, to see that pop() destroys at once.
struct Tracked {
  static inline int alive = 0;
  std::string value;
  explicit Tracked(std::string v) : value(std::move(v)) { ++alive; }
  Tracked(Tracked&& other) noexcept : value(std::move(other.value)) { ++alive; }
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() { --alive; }
};

TEST(BoundedFifoTest, FirstInFirstOut) {
  BoundedFifo<int> fifo(8);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(fifo.push(int{i}));
  EXPECT_EQ(fifo.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(fifo.front(), i);
    fifo.pop();
  }
  EXPECT_TRUE(fifo.empty());
}

TEST(BoundedFifoTest, RefusesPastTheCapacityAndStaysIntact) {
  BoundedFifo<int> fifo(3);
  EXPECT_TRUE(fifo.push(1));
  EXPECT_TRUE(fifo.push(2));
  EXPECT_TRUE(fifo.push(3));
  EXPECT_TRUE(fifo.full());
  EXPECT_FALSE(fifo.push(4));
  EXPECT_EQ(fifo.size(), 3u);
  EXPECT_EQ(fifo.take(), 1);
  EXPECT_TRUE(fifo.push(4));
  EXPECT_EQ(fifo.take(), 2);
  EXPECT_EQ(fifo.take(), 3);
  EXPECT_EQ(fifo.take(), 4);
}

TEST(BoundedFifoTest, HoldsNoStorageWhenEmpty) {
  BoundedFifo<std::string> fifo(16);
  EXPECT_EQ(fifo.allocated(), 0u);
  ASSERT_TRUE(fifo.push("a"));
  EXPECT_GT(fifo.allocated(), 0u);
  fifo.pop();
  EXPECT_EQ(fifo.allocated(), 0u);
}

TEST(BoundedFifoTest, GrowsByDoublingUpToTheCapacityOnly) {
  BoundedFifo<int> fifo(10);
  ASSERT_TRUE(fifo.push(0));
  EXPECT_EQ(fifo.allocated(), BoundedFifo<int>::kInitialSlots);
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(fifo.push(int{i}));
  EXPECT_EQ(fifo.allocated(), 10u);  // 4 → 8 → 10, never past the bound
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fifo.take(), i);
}

// Under a steady backlog the queue never runs empty; what was consumed must still be freed.
TEST(BoundedFifoTest, PopDestroysAtOnceUnderASteadyBacklog) {
  Tracked::alive = 0;
  {
    BoundedFifo<Tracked> fifo(4);
    ASSERT_TRUE(fifo.push(Tracked("a")));
    ASSERT_TRUE(fifo.push(Tracked("b")));
    for (int round = 0; round < 1000; ++round) {
      ASSERT_TRUE(fifo.push(Tracked(std::string(100, 'x'))));
      fifo.pop();
      EXPECT_EQ(Tracked::alive, 2);  // never more than what is queued
    }
    EXPECT_EQ(fifo.size(), 2u);
  }
  EXPECT_EQ(Tracked::alive, 0);
}

TEST(BoundedFifoTest, WrapsAroundInOrder) {
  BoundedFifo<int> fifo(4);
  int next_in = 0;
  int next_out = 0;
  for (int round = 0; round < 50; ++round) {
    while (!fifo.full()) ASSERT_TRUE(fifo.push(int{next_in++}));
    fifo.pop();
    ++next_out;
    fifo.pop();
    ++next_out;
    EXPECT_EQ(fifo.front(), next_out);
    EXPECT_EQ(fifo[1], next_out + 1);
  }
}

TEST(BoundedFifoTest, GrowingKeepsOrderAcrossTheWrap) {
  BoundedFifo<std::string> fifo(64);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(fifo.push(std::to_string(i)));
  fifo.pop();
  fifo.pop();
  // head is now mid-ring; grow past the initial slots
  for (int i = 4; i < 20; ++i) ASSERT_TRUE(fifo.push(std::to_string(i)));
  for (int i = 2; i < 20; ++i) EXPECT_EQ(fifo.take(), std::to_string(i));
}

TEST(BoundedFifoTest, TruncateDropsTheNewest) {
  Tracked::alive = 0;
  BoundedFifo<Tracked> fifo(8);
  for (const char* v : {"a", "b", "c", "d"}) ASSERT_TRUE(fifo.push(Tracked(v)));
  fifo.truncate(1);
  EXPECT_EQ(fifo.size(), 1u);
  EXPECT_EQ(Tracked::alive, 1);
  EXPECT_EQ(fifo.front().value, "a");
  fifo.clear();
  EXPECT_EQ(Tracked::alive, 0);
  EXPECT_EQ(fifo.allocated(), 0u);
}

// What a write in flight reads was moved out of the queue: later pushes that grow the ring
// cannot move it. Short strings live inside the object, so this is where a write that pointed
// into the queue's storage would read freed memory (the bug this type replaced).
TEST(BoundedFifoTest, TakenElementIsUnaffectedByGrowth) {
  BoundedFifo<std::string> fifo(64);
  ASSERT_TRUE(fifo.push("0\r\n"));
  const std::string in_flight = fifo.take();
  const char* bytes = in_flight.data();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(fifo.push(std::to_string(i)));
  EXPECT_EQ(std::string(bytes, 3), "0\r\n");
}

}  // namespace
}  // namespace sluice
