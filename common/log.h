// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-25T21:50:00.123Z","level":"info","msg":"partition up","partition":"p1"}
// Never pass secrets (PINs, tokens) or document contents as fields.
//
// Thread-safe: each line is written with one write(2) so lines never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace qseal {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  template <typename T,
            typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  LogField(std::string_view k, T v) : key(k), value(static_cast<std::int64_t>(v)) {}

  std::string_view key;
  std::variant<std::string, std::int64_t, double, bool> value;
};

// Lines below the level are dropped. Default: kInfo.
void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warn", "error"; false when unknown.
bool ParseLogLevel(std::string_view name, LogLevel* level);

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kInfo, msg, f);
}
inline void LogWarn(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kWarn, msg, f);
}
inline void LogError(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kError, msg, f);
}
inline void LogDebug(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kDebug, msg, f);
}

// Formats a log line without writing it (for tests).
std::string FormatLogLine(LogLevel level, std::string_view msg,
                          std::initializer_list<LogField> fields);

}  // namespace qseal
