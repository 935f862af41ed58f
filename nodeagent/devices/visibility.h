// nodeagent/devices/visibility.h — which devices the device plugins gave this pod.
//
// Kubernetes device plugins hand a container its accelerators through environment
// variables, and the node daemon must use exactly those, not every device it can see:
//
//   NVIDIA_VISIBLE_DEVICES      "all", "none", "void", "" or a comma list of GPU indices
//                               and UUIDs ("0,2", "GPU-8f1c…")
//   AWS_NEURON_VISIBLE_DEVICES  "all" or a list of device indices and ranges ("0,2-3")
//   NEURON_RT_VISIBLE_CORES     a list of NeuronCore indices and ranges, numbered across
//                               devices ("0-3": the first four cores of the node)
//
// An unset variable means no plugin restricted us: every device the node has is ours.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace agentry::devices {

// One variable's allow-list. `all` when the variable is unset or says "all".
struct DeviceSelection {
  bool all = true;
  std::set<int> indices;
  std::set<std::string> uuids;  // NVIDIA only

  bool AllowsIndex(int index) const { return all || indices.count(index) != 0; }
};

struct Visibility {
  DeviceSelection nvidia;
  DeviceSelection neuron_devices;
  DeviceSelection neuron_cores;

  // From this process's environment; InvalidArgument naming the variable and the bad entry.
  static StatusOr<Visibility> FromEnvironment();
  // From explicit values (nullopt: the variable is unset), for tests and config files.
  static StatusOr<Visibility> FromValues(std::optional<std::string_view> nvidia_visible_devices,
                                         std::optional<std::string_view> neuron_visible_devices,
                                         std::optional<std::string_view> neuron_visible_cores);
};

// "0,2-3,5" → {0, 2, 3, 5}; "all" (any case) → all. `variable` names the source in errors.
StatusOr<DeviceSelection> ParseIndexList(std::string_view variable, std::string_view value);
// NVIDIA_VISIBLE_DEVICES: "all"; "none", "void" or "" (no GPU); indices and GPU-/MIG- UUIDs.
StatusOr<DeviceSelection> ParseNvidiaVisibleDevices(std::string_view value);

}  // namespace agentry::devices
