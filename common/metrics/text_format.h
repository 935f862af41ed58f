// common/metrics/text_format.h — the Prometheus text exposition format (version 0.0.4).
//
// One `# HELP` and `# TYPE` line per family, then one sample line per child (histograms:
// `_bucket{le=...}` lines, `_sum`, `_count`). HELP text escapes `\` and newline; label
// values escape `\`, `"` and newline, as the format requires. Checked against the real
// `promtool check metrics` in tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/metrics/registry.h"

namespace agentry::metrics {

// The Content-Type a /metrics endpoint answers with.
inline constexpr std::string_view kTextFormatContentType =
    "text/plain; version=0.0.4; charset=utf-8";

std::string SerializeTextFormat(const std::vector<FamilySnapshot>& families);

// Exposed for tests.
std::string EscapeHelp(std::string_view help);
std::string EscapeLabelValue(std::string_view value);
// Shortest text that reads back as the same double; "+Inf", "-Inf", "NaN".
std::string FormatSampleValue(double value);

}  // namespace agentry::metrics
