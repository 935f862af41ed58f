// nodeagent/devices/visibility.cc — see visibility.h.
#include "nodeagent/devices/visibility.h"

#include <cctype>
#include <cstdlib>
#include <string>

#include "common/strings.h"

namespace agentry::devices {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A device index: decimal digits only, below 4096 (no node has more devices; a larger
// number is a typo, and a range up to it must not build a huge set).
bool ParseIndex(std::string_view s, int* out) {
  constexpr int kMaxIndex = 4095;
  const std::optional<int> v = ParseNonNegativeInt(s);
  if (!v || *v > kMaxIndex) return false;
  *out = *v;
  return true;
}

template <typename Fn>
Status ForEachEntry(std::string_view value, Fn fn) {
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = value.find(',', start);
    const size_t end = comma == std::string_view::npos ? value.size() : comma;
    Status s = fn(TrimAsciiWhitespace(value.substr(start, end - start)));
    if (!s.ok()) return s;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return OkStatus();
}

Status BadEntry(std::string_view variable, std::string_view value, std::string_view entry,
                std::string_view expected) {
  return InvalidArgumentError(std::string(variable) + "=\"" + std::string(value) + "\": \"" +
                              std::string(entry) + "\" is not " + std::string(expected));
}

std::optional<std::string_view> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string_view(v);
}

}  // namespace

StatusOr<DeviceSelection> ParseIndexList(std::string_view variable, std::string_view value) {
  DeviceSelection sel;
  if (EqualsIgnoreCase(TrimAsciiWhitespace(value), "all")) return sel;
  sel.all = false;
  Status s = ForEachEntry(value, [&](std::string_view entry) -> Status {
    const size_t dash = entry.find('-');
    int lo = 0;
    int hi = 0;
    const bool ok = dash == std::string_view::npos
                        ? ParseIndex(entry, &lo) && ParseIndex(entry, &hi)
                        : ParseIndex(TrimAsciiWhitespace(entry.substr(0, dash)), &lo) &&
                              ParseIndex(TrimAsciiWhitespace(entry.substr(dash + 1)), &hi) &&
                              lo <= hi;
    if (!ok) {
      return BadEntry(variable, value, entry, "an index (0-4095) or a range such as 2-3");
    }
    for (int i = lo; i <= hi; ++i) sel.indices.insert(i);
    return OkStatus();
  });
  if (!s.ok()) return s;
  return sel;
}

StatusOr<DeviceSelection> ParseNvidiaVisibleDevices(std::string_view value) {
  constexpr std::string_view kVariable = "NVIDIA_VISIBLE_DEVICES";
  DeviceSelection sel;
  const std::string_view v = TrimAsciiWhitespace(value);
  if (EqualsIgnoreCase(v, "all")) return sel;
  sel.all = false;
  if (v.empty() || EqualsIgnoreCase(v, "none") || EqualsIgnoreCase(v, "void")) return sel;
  Status s = ForEachEntry(value, [&](std::string_view entry) -> Status {
    int index = 0;
    if (ParseIndex(entry, &index)) {
      sel.indices.insert(index);
    } else if (entry.rfind("GPU-", 0) == 0 || entry.rfind("MIG-", 0) == 0) {
      sel.uuids.insert(std::string(entry));
    } else {
      return BadEntry(kVariable, value, entry, "a GPU index or a GPU-/MIG- UUID");
    }
    return OkStatus();
  });
  if (!s.ok()) return s;
  return sel;
}

StatusOr<Visibility> Visibility::FromValues(std::optional<std::string_view> nvidia_visible_devices,
                                            std::optional<std::string_view> neuron_visible_devices,
                                            std::optional<std::string_view> neuron_visible_cores) {
  Visibility v;
  if (nvidia_visible_devices) {
    StatusOr<DeviceSelection> s = ParseNvidiaVisibleDevices(*nvidia_visible_devices);
    if (!s.ok()) return s.status();
    v.nvidia = *s;
  }
  if (neuron_visible_devices) {
    StatusOr<DeviceSelection> s =
        ParseIndexList("AWS_NEURON_VISIBLE_DEVICES", *neuron_visible_devices);
    if (!s.ok()) return s.status();
    v.neuron_devices = *s;
  }
  if (neuron_visible_cores) {
    StatusOr<DeviceSelection> s = ParseIndexList("NEURON_RT_VISIBLE_CORES", *neuron_visible_cores);
    if (!s.ok()) return s.status();
    v.neuron_cores = *s;
  }
  return v;
}

StatusOr<Visibility> Visibility::FromEnvironment() {
  return FromValues(Env("NVIDIA_VISIBLE_DEVICES"), Env("AWS_NEURON_VISIBLE_DEVICES"),
                    Env("NEURON_RT_VISIBLE_CORES"));
}

}  // namespace agentry::devices
