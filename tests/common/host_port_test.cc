#include "common/host_port.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

TEST(ParseHostPortTest, Ipv4) {
  const auto hp = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 8080);
  EXPECT_EQ(hp->ToString(), "127.0.0.1:8080");
}

TEST(ParseHostPortTest, Name) {
  const auto hp = ParseHostPort("localhost:50051");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "localhost");
  EXPECT_EQ(hp->port, 50051);
}

TEST(ParseHostPortTest, BracketedIpv6) {
  const auto hp = ParseHostPort("[::1]:80");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 80);
  EXPECT_EQ(hp->ToString(), "[::1]:80");

  const auto full = ParseHostPort("[2001:db8::a:b]:65535");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->host, "2001:db8::a:b");
  EXPECT_EQ(full->port, 65535);
}

TEST(ParseHostPortTest, PortZeroAndLimits) {
  auto hp = ParseHostPort("0.0.0.0:0");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->port, 0);
  EXPECT_FALSE(ParseHostPort("h:65536").ok());
  EXPECT_FALSE(ParseHostPort("h:99999999999999999999").ok());
}

TEST(ParseHostPortTest, RejectsBadInput) {
  for (const char* bad :
       {"", "localhost", ":80", "host:", "host:x", "host:80x", "host:-1", "host:+80", "host: 80",
        "host:80 ", "::1:80", "[::1]", "[::1:80", "[]:80", "[:80", "::1]:80"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << '"' << bad << '"';
  }
}

TEST(HostPortTest, ToStringRoundTrips) {
  for (const char* text : {"example.com:443", "10.1.2.3:1", "[fe80::1]:9000"}) {
    const auto hp = ParseHostPort(text);
    ASSERT_TRUE(hp.ok()) << text;
    EXPECT_EQ(hp->ToString(), text);
  }
}

TEST(ParseHostPortListTest, Single) {
  const auto list = ParseHostPortList("127.0.0.1:1");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].host, "127.0.0.1");
  EXPECT_EQ((*list)[0].port, 1);
}

TEST(ParseHostPortListTest, SeveralInOrder) {
  const auto list = ParseHostPortList("a:1,[::1]:2,c.example:3");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].host, "a");
  EXPECT_EQ((*list)[0].port, 1);
  EXPECT_EQ((*list)[1].host, "::1");
  EXPECT_EQ((*list)[1].port, 2);
  EXPECT_EQ((*list)[2].host, "c.example");
  EXPECT_EQ((*list)[2].port, 3);
}

TEST(ParseHostPortListTest, SkipsEmptyItems) {
  const auto list = ParseHostPortList("a:1,, ,b:2,");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].host, "a");
  EXPECT_EQ((*list)[1].host, "b");
}

TEST(ParseHostPortListTest, SpacesAroundItemsNeverEndUpInAHost) {
  // Blank items are skipped, so spaces are expected in lists; "a:1, b:2" must not yield the
  // host " b" (it would be accepted here and fail later as an unresolvable name).
  const auto list = ParseHostPortList("a:1, b:2");
  if (list.ok()) {
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].host, "a");
    EXPECT_EQ((*list)[1].host, "b");
  }
}

TEST(ParseHostPortListTest, RejectsEmptyLists) {
  EXPECT_FALSE(ParseHostPortList("").ok());
  EXPECT_FALSE(ParseHostPortList(",").ok());
  EXPECT_FALSE(ParseHostPortList(" , ").ok());
}

TEST(ParseHostPortListTest, OneBadItemFailsTheList) {
  EXPECT_FALSE(ParseHostPortList("a:1,b").ok());
  EXPECT_FALSE(ParseHostPortList("a:1,::1:2").ok());
  EXPECT_FALSE(ParseHostPortList("a:99999,b:2").ok());
}

}  // namespace
}  // namespace sluice
