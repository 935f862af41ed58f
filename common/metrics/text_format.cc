#include "common/metrics/text_format.h"

#include <charconv>
#include <cmath>

namespace agentry::metrics {
namespace {

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` plus an optional extra label (histogram `le`); nothing when no labels.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  std::string_view extra_name, std::string_view extra_value, std::string* out) {
  if (names.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!first) out->push_back(',');
    first = false;
    out->append(names[i]);
    out->append("=\"");
    out->append(EscapeLabelValue(values[i]));
    out->push_back('"');
  }
  if (!extra_name.empty()) {
    if (!first) out->push_back(',');
    out->append(extra_name);
    out->append("=\"");
    out->append(extra_value);
    out->push_back('"');
  }
  out->push_back('}');
}

void AppendSample(std::string_view name, std::string_view suffix, const FamilySnapshot& family,
                  const ChildSnapshot& child, std::string_view extra_name,
                  std::string_view extra_value, double value, std::string* out) {
  out->append(name);
  out->append(suffix);
  AppendLabels(family.label_names, child.label_values, extra_name, extra_value, out);
  out->push_back(' ');
  out->append(FormatSampleValue(value));
  out->push_back('\n');
}

}  // namespace

namespace {

// Both escapes turn `\` and newline into `\\` and `\n`; label values also escape `"`.
std::string Escape(std::string_view text, bool escape_quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && escape_quotes) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string EscapeHelp(std::string_view help) { return Escape(help, /*escape_quotes=*/false); }

std::string EscapeLabelValue(std::string_view value) {
  return Escape(value, /*escape_quotes=*/true);
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

std::string SerializeTextFormat(const std::vector<FamilySnapshot>& families) {
  std::string out;
  for (const FamilySnapshot& family : families) {
    out.append("# HELP ");
    out.append(family.name);
    out.push_back(' ');
    out.append(EscapeHelp(family.help));
    out.append("\n# TYPE ");
    out.append(family.name);
    out.push_back(' ');
    out.append(TypeName(family.type));
    out.push_back('\n');
    for (const ChildSnapshot& child : family.children) {
      if (family.type != MetricType::kHistogram) {
        AppendSample(family.name, "", family, child, "", "", child.value, &out);
        continue;
      }
      const Histogram::Snapshot& h = child.histogram;
      for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
        AppendSample(family.name, "_bucket", family, child, "le",
                     FormatSampleValue(h.upper_bounds[i]),
                     static_cast<double>(h.cumulative_counts[i]), &out);
      }
      AppendSample(family.name, "_bucket", family, child, "le", "+Inf",
                   static_cast<double>(h.count), &out);
      AppendSample(family.name, "_sum", family, child, "", "", h.sum, &out);
      AppendSample(family.name, "_count", family, child, "", "", static_cast<double>(h.count),
                   &out);
    }
  }
  return out;
}

}  // namespace agentry::metrics
