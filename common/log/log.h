// common/log/log.h — structured logging: one JSON object per line.
//
// Every line carries `ts` (RFC 3339, UTC, milliseconds), `level`, `component` and `msg`,
// then the logger's context fields (`agent`, `namespace`, `session` when known), then the
// call's own fields. Context is attached once and inherited:
//
//   agentry::log::Logger log("runtime");
//   auto session_log = log.WithAgent("triage", "team-a").WithSession(id);
//   session_log.Info("turn finished", {{"tokens", 812}, {"tool_calls", 2}});
//   // {"ts":"...","level":"info","component":"runtime","msg":"turn finished",
//   //  "agent":"triage","namespace":"team-a","session":"s-1","tokens":812,"tool_calls":2}
//
// The level is process-wide: from AGENTRY_LOG_LEVEL at start-up, or a --log-level flag.
// Lines go to a process-wide sink (stderr by default); a line is written with one call under
// a mutex so lines from different threads never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace agentry::log {

enum class Level : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kOff = 5 };

// "trace", "debug", "info", "warn" (or "warning"), "error", "off"; case-insensitive.
StatusOr<Level> ParseLevel(std::string_view text);
std::string_view LevelName(Level level);

// A field's value keeps its JSON type: strings are quoted, numbers and booleans are not.
using FieldValue = std::variant<std::string, int64_t, double, bool>;

struct Field {
  Field(std::string k, std::string_view v) : key(std::move(k)), value(std::string(v)) {}
  Field(std::string k, const char* v) : key(std::move(k)), value(std::string(v)) {}
  Field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  Field(std::string k, bool v) : key(std::move(k)), value(v) {}
  Field(std::string k, double v) : key(std::move(k)), value(v) {}
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  Field(std::string k, Int v) : key(std::move(k)), value(static_cast<int64_t>(v)) {}

  std::string key;
  FieldValue value;
};

// Receives finished lines (without the trailing newline).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Write(std::string_view line) = 0;
};

// Process-wide configuration. Both are thread-safe.
void SetLevel(Level level);
Level GetLevel();
// Replaces the sink; nullptr restores stderr. Returns the previous sink.
std::shared_ptr<Sink> SetSink(std::shared_ptr<Sink> sink);

// Reads AGENTRY_LOG_LEVEL when set; an invalid value is an error naming the variable.
Status InitFromEnvironment();

class Logger {
 public:
  explicit Logger(std::string component);

  // Copies with more context; the original is unchanged.
  Logger WithAgent(std::string_view agent, std::string_view ns) const;
  Logger WithSession(std::string_view session) const;
  Logger With(std::initializer_list<Field> fields) const;

  bool Enabled(Level level) const { return level >= GetLevel() && level != Level::kOff; }

  void Log(Level level, std::string_view msg, std::initializer_list<Field> fields = {}) const;
  void Trace(std::string_view msg, std::initializer_list<Field> f = {}) const {
    Log(Level::kTrace, msg, f);
  }
  void Debug(std::string_view msg, std::initializer_list<Field> f = {}) const {
    Log(Level::kDebug, msg, f);
  }
  void Info(std::string_view msg, std::initializer_list<Field> f = {}) const {
    Log(Level::kInfo, msg, f);
  }
  void Warn(std::string_view msg, std::initializer_list<Field> f = {}) const {
    Log(Level::kWarn, msg, f);
  }
  void Error(std::string_view msg, std::initializer_list<Field> f = {}) const {
    Log(Level::kError, msg, f);
  }

  // The JSON line Log() would write at `level`; exposed for tests and for callers that
  // need the line itself (for example to attach it to an audit record).
  std::string Format(Level level, std::string_view msg, std::initializer_list<Field> fields) const;

 private:
  std::string component_;
  std::vector<Field> context_;
};

}  // namespace agentry::log
