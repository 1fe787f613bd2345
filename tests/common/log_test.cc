#include "common/log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qseal {
namespace {

TEST(LogTest, FormatsOneJsonObjectPerLine) {
  std::string line = FormatLogLine(LogLevel::kWarn, "partition down",
                                   {{"partition", "p1"}, {"sessions", 16}, {"healthy", false}});
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["msg"], "partition down");
  EXPECT_EQ(j["partition"], "p1");
  EXPECT_EQ(j["sessions"], 16);
  EXPECT_EQ(j["healthy"], false);
  EXPECT_TRUE(j.contains("ts"));
}

TEST(LogTest, InvalidUtf8DoesNotThrow) {
  std::string bad = "name\xff\xfe";
  std::string line = FormatLogLine(LogLevel::kInfo, "file", {{"name", bad}});
  EXPECT_NO_THROW(nlohmann::json::parse(line));
}

TEST(LogTest, ParseLogLevel) {
  LogLevel l = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("verbose", &l));
}

}  // namespace
}  // namespace qseal
