#include "common/log/log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "common/json_escape.h"

namespace agentry::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};

class StderrSink final : public Sink {
 public:
  void Write(std::string_view line) override {
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    std::fwrite(buf.data(), 1, buf.size(), stderr);
  }
};

struct SinkHolder {
  std::mutex mu;
  std::shared_ptr<Sink> sink = std::make_shared<StderrSink>();
};

SinkHolder& Holder() {
  static SinkHolder* holder = new SinkHolder();  // never destroyed: logging works in atexit
  return *holder;
}

void AppendTimestamp(std::string* out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];  // generous: the compiler cannot prove tm fields are in range
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  out->append(buf);
}

void AppendValue(const FieldValue& value, std::string* out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    AppendJsonString(*s, out);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out->append(std::to_string(*i));
  } else if (const auto* d = std::get_if<double>(&value)) {
    // JSON has no NaN/Inf; write them as strings so the line stays valid JSON.
    if (std::isfinite(*d)) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", *d);
      out->append(buf);
    } else {
      AppendJsonString(std::isnan(*d) ? "NaN" : (*d > 0 ? "+Inf" : "-Inf"), out);
    }
  } else {
    out->append(std::get<bool>(value) ? "true" : "false");
  }
}

void AppendField(const Field& field, std::string* out) {
  out->push_back(',');
  AppendJsonString(field.key, out);
  out->push_back(':');
  AppendValue(field.value, out);
}

// Replaces a context field with the same key, so WithSession twice keeps the newest.
void SetContextField(std::vector<Field>* context, Field field) {
  for (Field& existing : *context) {
    if (existing.key == field.key) {
      existing = std::move(field);
      return;
    }
  }
  context->push_back(std::move(field));
}

}  // namespace

StatusOr<Level> ParseLevel(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "trace") return Level::kTrace;
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  if (lower == "off") return Level::kOff;
  return InvalidArgumentError("unknown log level \"" + std::string(text) +
                              "\" (want trace, debug, info, warn, error or off)");
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "unknown";
}

void SetLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level GetLevel() { return g_level.load(std::memory_order_relaxed); }

std::shared_ptr<Sink> SetSink(std::shared_ptr<Sink> sink) {
  SinkHolder& holder = Holder();
  std::lock_guard<std::mutex> lock(holder.mu);
  if (!sink) sink = std::make_shared<StderrSink>();
  std::swap(holder.sink, sink);
  return sink;
}

Status InitFromEnvironment() {
  const char* value = std::getenv("AGENTRY_LOG_LEVEL");
  if (value == nullptr || *value == '\0') return OkStatus();
  StatusOr<Level> level = ParseLevel(value);
  if (!level.ok()) return level.status().WithPrefix("AGENTRY_LOG_LEVEL");
  SetLevel(*level);
  return OkStatus();
}

Logger::Logger(std::string component) : component_(std::move(component)) {}

Logger Logger::WithAgent(std::string_view agent, std::string_view ns) const {
  Logger copy = *this;
  SetContextField(&copy.context_, Field("agent", agent));
  SetContextField(&copy.context_, Field("namespace", ns));
  return copy;
}

Logger Logger::WithSession(std::string_view session) const {
  Logger copy = *this;
  SetContextField(&copy.context_, Field("session", session));
  return copy;
}

Logger Logger::With(std::initializer_list<Field> fields) const {
  Logger copy = *this;
  for (const Field& f : fields) SetContextField(&copy.context_, f);
  return copy;
}

std::string Logger::Format(Level level, std::string_view msg,
                           std::initializer_list<Field> fields) const {
  std::string line;
  line.reserve(128 + msg.size());
  line.append("{\"ts\":\"");
  AppendTimestamp(&line);
  line.append("\",\"level\":\"");
  line.append(LevelName(level));
  line.append("\",\"component\":");
  AppendJsonString(component_, &line);
  line.append(",\"msg\":");
  AppendJsonString(msg, &line);
  for (const Field& f : context_) AppendField(f, &line);
  for (const Field& f : fields) AppendField(f, &line);
  line.push_back('}');
  return line;
}

void Logger::Log(Level level, std::string_view msg, std::initializer_list<Field> fields) const {
  if (!Enabled(level)) return;
  const std::string line = Format(level, msg, fields);
  SinkHolder& holder = Holder();
  std::lock_guard<std::mutex> lock(holder.mu);
  holder.sink->Write(line);
}

}  // namespace agentry::log
