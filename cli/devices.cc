// cli/devices.cc — see devices.h.
#include "cli/devices.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "nodeagent/devices/discovery.h"

namespace agentry::cli {

int RunDevices(const DevicesOptions& options) {
  StatusOr<devices::Visibility> visibility = devices::Visibility::FromEnvironment();
  if (!visibility.ok()) {
    std::fprintf(stderr, "agentry devices: %s\n", visibility.status().message().c_str());
    return 2;
  }
  devices::DiscoveryOptions discovery;
  discovery.dev_root = options.dev_root;
  discovery.proc_root = options.proc_root;
  discovery.sys_root = options.sys_root;
  discovery.visibility = *visibility;
  const devices::Inventory inventory = devices::DiscoverDevices(discovery);
  for (const std::string& w : inventory.warnings) {
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  }
  if (!options.json) {
    for (const devices::Device& d : inventory.devices) {
      std::printf("%s\n", devices::DescribeDevice(d).c_str());
    }
    return 0;
  }
  nlohmann::json doc = nlohmann::json::array();
  for (const devices::Device& d : inventory.devices) {
    nlohmann::json j = {{"id", d.id},
                        {"kind", devices::DeviceKindName(d.kind)},
                        {"index", d.index},
                        {"model", d.model},
                        {"backend", d.backend}};
    if (!d.uuid.empty()) j["uuid"] = d.uuid;
    if (!d.pci_bus.empty()) j["pciBus"] = d.pci_bus;
    if (d.cores > 0) j["cores"] = d.cores;
    if (d.numa_nodes > 0) j["numaNodes"] = d.numa_nodes;
    if (!d.isa.empty()) j["isa"] = d.isa;
    if (d.memory_total_bytes > 0) {
      j["memoryTotalBytes"] = d.memory_total_bytes;
      j["memoryFreeBytes"] = d.memory_free_bytes;
    }
    if (d.utilization_percent >= 0) j["utilizationPercent"] = d.utilization_percent;
    if (!d.note.empty()) j["note"] = d.note;
    doc.push_back(std::move(j));
  }
  std::printf("%s\n", doc.dump(2).c_str());
  return 0;
}

}  // namespace agentry::cli
