#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

using namespace std::string_literals;

TEST(PercentDecodeTest, PlainTextUnchanged) {
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("/a/b.c~d-e_f"), "/a/b.c~d-e_f");
}

TEST(PercentDecodeTest, DecodesEscapesInBothCases) {
  EXPECT_EQ(PercentDecode("%41%62%2f%2F"), "Ab//");
  EXPECT_EQ(PercentDecode("/caf%C3%A9"), "/caf\xC3\xA9");
  EXPECT_EQ(PercentDecode("%e2%82%ac"), "\xE2\x82\xAC");
  EXPECT_EQ(PercentDecode("a%20b"), "a b");
}

TEST(PercentDecodeTest, DecodesNulAndHighBytes) {
  EXPECT_EQ(PercentDecode("x%00y%ff"), "x\0y\xff"s);
}

TEST(PercentDecodeTest, EscapeAtTheVeryEnd) {
  EXPECT_EQ(PercentDecode("abc%21"), "abc!");
  EXPECT_EQ(PercentDecode("%21"), "!");
}

TEST(PercentDecodeTest, DecodedPercentIsNotDecodedAgain) {
  EXPECT_EQ(PercentDecode("%2541"), "%41");
}

TEST(PercentDecodeTest, MalformedEscapes) {
  for (const char* bad :
       {"%", "%4", "a%", "a%4", "%zz", "%4g", "%g4", "%%41", "100%", "%-1", "% 1"}) {
    EXPECT_FALSE(PercentDecode(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(PercentDecodeTest, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(PercentDecode("a+b"), "a+b");
  EXPECT_EQ(PercentDecode("a+b", /*plus_is_space=*/true), "a b");
  EXPECT_EQ(PercentDecode("%2B+", /*plus_is_space=*/true), "+ ");
  EXPECT_EQ(PercentDecode("%2B+"), "++");
}

TEST(IsValidUtf8Test, AsciiAndEmpty) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello /world"));
  EXPECT_TRUE(IsValidUtf8("\0"s));
  EXPECT_TRUE(IsValidUtf8("\x7F"));
}

TEST(IsValidUtf8Test, ValidMultiByte) {
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));       // é
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF, just below surrogates
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000, just above surrogates
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // 😀
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(
      IsValidUtf8("a\xC3\xA9"
                  "b\xE2\x82\xAC"
                  "c\xF0\x9F\x98\x80"
                  "d"));
}

TEST(IsValidUtf8Test, Overlongs) {
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));
}

TEST(IsValidUtf8Test, Surrogates) {
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // U+D800
  EXPECT_FALSE(IsValidUtf8("\xED\xAF\xBF"));  // U+DBFF
  EXPECT_FALSE(IsValidUtf8("\xED\xB0\x80"));  // U+DC00
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));  // U+DFFF
}

TEST(IsValidUtf8Test, AboveMaxCodePoint) {
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF7\xBF\xBF\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xFC\x84\x80\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(IsValidUtf8Test, StrayContinuationBytes) {
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(
      IsValidUtf8("a\xBF"
                  "b"));
  EXPECT_FALSE(IsValidUtf8("\xC3\xA9\xA9"));
}

TEST(IsValidUtf8Test, TruncatedSequences) {
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("abc\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xE2"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F"));
  // A lead byte followed by too few continuation bytes, then more text.
  EXPECT_FALSE(
      IsValidUtf8("\xE2\x82"
                  "a"));
  EXPECT_FALSE(
      IsValidUtf8("\xF0\x9F\x98"
                  "a"));
  EXPECT_FALSE(
      IsValidUtf8("\xC3"
                  "a"));
}

// Fed in pieces, a character split across them is fine; a bad byte fails at once and the
// failure sticks.
TEST(Utf8ValidatorTest, AcceptsCharactersSplitAcrossPieces) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Validator validator;
    EXPECT_TRUE(validator.Feed(std::string_view(text).substr(0, cut))) << cut;
    EXPECT_TRUE(validator.Feed(std::string_view(text).substr(cut))) << cut;
    EXPECT_TRUE(validator.complete()) << cut;
  }
}

TEST(Utf8ValidatorTest, IncompleteAtTheEndIsNotComplete) {
  Utf8Validator validator;
  EXPECT_TRUE(validator.Feed("ok \xE2\x82"));
  EXPECT_FALSE(validator.complete());
  EXPECT_TRUE(validator.Feed("\xAC"));
  EXPECT_TRUE(validator.complete());
}

TEST(Utf8ValidatorTest, FailsAtTheFirstBadByteAndStaysFailed) {
  Utf8Validator validator;
  EXPECT_TRUE(validator.Feed("fine"));
  EXPECT_FALSE(validator.Feed("\xED\xA0"));  // a surrogate, known bad after two bytes
  EXPECT_FALSE(validator.Feed("more"));
  EXPECT_FALSE(validator.complete());
  validator.Reset();
  EXPECT_TRUE(validator.Feed("again"));
  EXPECT_TRUE(validator.complete());
}

TEST(Utf8ValidatorTest, LongAsciiRunsThenAMultiByteCharacter) {
  std::string text(1000, 'x');
  text += "\xC3\xA9";
  text += std::string(13, 'y');
  EXPECT_TRUE(IsValidUtf8(text));
  text[500] = '\x80';
  EXPECT_FALSE(IsValidUtf8(text));
}

}  // namespace
}  // namespace sluice
