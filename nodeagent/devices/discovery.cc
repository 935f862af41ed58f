// nodeagent/devices/discovery.cc — see discovery.h.
#include "nodeagent/devices/discovery.h"

#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>

#include "common/cpu/cpu_features.h"
#include "common/file.h"
#include "common/strings.h"
#include "nodeagent/devices/nvml.h"

namespace agentry::devices {
namespace {

namespace fs = std::filesystem;

// The indices N of the entries of `dir` named <prefix>N, ascending ("nvidia0", "nvidia1"; not
// "nvidiactl" or "nvidia-uvm").
std::vector<int> NumberedEntries(const std::string& dir, std::string_view prefix) {
  std::vector<int> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string_view digits = std::string_view{name}.substr(prefix.size());
    if (digits.size() > 4) continue;
    if (const std::optional<int> n = ParseNonNegativeInt(digits)) out.push_back(*n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A small sysfs or procfs file, trimmed; nullopt (and a warning) when it cannot be read.
std::optional<std::string> ReadValue(const std::string& path, Inventory* inv, bool warn = true) {
  StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    if (warn) inv->warnings.push_back(text.status().message());
    return std::nullopt;
  }
  return std::string(TrimAsciiWhitespace(*text));
}

std::optional<int> ReadCount(const std::string& path, Inventory* inv) {
  const std::optional<std::string> read = ReadValue(path, inv);
  if (!read) return std::nullopt;
  const std::optional<int> n = ParseNonNegativeInt(*read);
  if (!n) inv->warnings.push_back(path + ": \"" + *read + "\" is not a count");
  return n;
}

// ---- CPU ----

Device DiscoverCpu(const DiscoveryOptions& o, Inventory* inv) {
  Device cpu;
  cpu.kind = DeviceKind::kCpu;
  cpu.id = "cpu";
  const cpu::CpuFeatures& features = cpu::GetCpuFeatures();
  cpu.model = features.brand;
  cpu.isa = features.ToString();
  cpu.backend = "cpu";

  const std::string cpu_dir = o.sys_root + "/devices/system/cpu";
  std::set<int> online;
  if (std::optional<std::string> list = ReadValue(cpu_dir + "/online", inv)) {
    StatusOr<DeviceSelection> sel = ParseIndexList(cpu_dir + "/online", *list);
    if (sel.ok()) {
      online = sel->indices;
    } else {
      inv->warnings.push_back(sel.status().message());
    }
  }
  if (o.use_affinity) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
      std::set<int> allowed;
      for (int i = 0; i < CPU_SETSIZE; ++i) {
        if (CPU_ISSET(i, &mask) && (online.empty() || online.count(i) != 0)) allowed.insert(i);
      }
      online = allowed;
    }
  }
  cpu.cores = static_cast<int>(online.size());
  const std::vector<int> nodes = NumberedEntries(o.sys_root + "/devices/system/node", "node");
  cpu.numa_nodes = nodes.empty() ? 1 : static_cast<int>(nodes.size());
  return cpu;
}

// ---- NVIDIA ----

struct NvidiaInfo {
  std::string model;
  std::string uuid;
  std::string bus;
};

// /proc/driver/nvidia/gpus/<bus>/information: "Key: value" lines; "Device Minor" is N of
// /dev/nvidiaN.
std::map<int, NvidiaInfo> ReadNvidiaDriverInfo(const DiscoveryOptions& o, Inventory* inv) {
  std::map<int, NvidiaInfo> by_minor;
  const std::string dir = o.proc_root + "/driver/nvidia/gpus";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string() + "/information";
    std::optional<std::string> text = ReadValue(path, inv);
    if (!text) continue;
    NvidiaInfo info;
    info.bus = it->path().filename().string();
    std::optional<int> minor;
    size_t start = 0;
    while (start < text->size()) {
      size_t eol = text->find('\n', start);
      if (eol == std::string::npos) eol = text->size();
      const std::string_view line(text->data() + start, eol - start);
      start = eol + 1;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view key = TrimAsciiWhitespace(line.substr(0, colon));
      const std::string value(TrimAsciiWhitespace(line.substr(colon + 1)));
      if (key == "Model") info.model = value;
      if (key == "GPU UUID") info.uuid = value;
      if (key == "Bus Location") info.bus = value;
      if (key == "Device Minor") minor = ParseNonNegativeInt(value);
    }
    if (!minor) {
      inv->warnings.push_back(path + ": no \"Device Minor\" line; the GPU at " + info.bus +
                              " cannot be matched to a /dev/nvidiaN node");
      continue;
    }
    by_minor[*minor] = info;
  }
  return by_minor;
}

void DiscoverNvidia(const DiscoveryOptions& o, Inventory* inv) {
  const std::vector<int> nodes = NumberedEntries(o.dev_root, "nvidia");
  std::map<int, NvidiaInfo> info = ReadNvidiaDriverInfo(o, inv);
  std::set<int> listed_indices;
  std::set<std::string> listed_uuids;
  std::unique_ptr<Nvml> nvml;
  std::string nvml_why;
  bool nvml_tried = false;
  for (int index : nodes) {
    Device gpu;
    gpu.kind = DeviceKind::kNvidiaGpu;
    gpu.index = index;
    gpu.id = "nvidia" + std::to_string(index);
    if (auto it = info.find(index); it != info.end()) {
      gpu.model = it->second.model;
      gpu.uuid = it->second.uuid;
      gpu.pci_bus = it->second.bus;
    } else {
      inv->warnings.push_back(o.dev_root + "/" + gpu.id +
                              ": the driver's /proc information lists no GPU with this minor");
    }
    const DeviceSelection& sel = o.visibility.nvidia;
    if (!sel.AllowsIndex(index) && (gpu.uuid.empty() || sel.uuids.count(gpu.uuid) == 0)) continue;
    listed_indices.insert(index);
    if (!gpu.uuid.empty()) listed_uuids.insert(gpu.uuid);
    gpu.backend = "cpu";
    gpu.note = "no CUDA backend in this build: this GPU's sessions run on the CPU backend";
    if (!o.nvml_library.empty() && !gpu.pci_bus.empty()) {
      if (!nvml_tried) {
        nvml = Nvml::Open(o.nvml_library, &nvml_why);
        nvml_tried = true;
      }
      GpuUsage usage;
      std::string why = nvml_why;
      if (nvml != nullptr && nvml->Query(gpu.pci_bus, &usage, &why)) {
        gpu.memory_total_bytes = usage.memory_total_bytes;
        gpu.memory_free_bytes = usage.memory_free_bytes;
        gpu.utilization_percent = usage.utilization_percent;
      } else {
        gpu.note += "; memory and utilisation unknown: " + why;
      }
    }
    inv->devices.push_back(std::move(gpu));
  }
  const DeviceSelection& sel = o.visibility.nvidia;
  if (sel.all) return;
  for (int index : sel.indices) {
    if (listed_indices.count(index) == 0) {
      inv->warnings.push_back("NVIDIA_VISIBLE_DEVICES names GPU " + std::to_string(index) +
                              ", which this node does not have");
    }
  }
  for (const std::string& uuid : sel.uuids) {
    if (listed_uuids.count(uuid) == 0) {
      inv->warnings.push_back("NVIDIA_VISIBLE_DEVICES names " + uuid +
                              ", which no GPU of this node has (MIG slices are not supported)");
    }
  }
}

// ---- AWS Neuron ----

void DiscoverNeuron(const DiscoveryOptions& o, Inventory* inv) {
  const std::vector<int> nodes = NumberedEntries(o.dev_root, "neuron");
  const std::string sys_dir = o.sys_root + "/devices/virtual/neuron_device";
  // NEURON_RT_VISIBLE_CORES numbers cores across devices in index order, so a device's
  // global core numbers start after all cores of the devices before it.
  int first_core = 0;
  std::set<int> listed;
  for (int index : nodes) {
    const std::string dir = sys_dir + "/neuron" + std::to_string(index);
    const int cores = ReadCount(dir + "/core_count", inv).value_or(0);
    const int device_first_core = first_core;
    first_core += cores;
    if (!o.visibility.neuron_devices.AllowsIndex(index)) continue;
    int visible_cores = 0;
    for (int c = device_first_core; c < device_first_core + cores; ++c) {
      visible_cores += o.visibility.neuron_cores.AllowsIndex(c) ? 1 : 0;
    }
    if (cores > 0 && visible_cores == 0) continue;  // none of its cores is ours
    Device dev;
    dev.kind = DeviceKind::kNeuron;
    dev.index = index;
    dev.id = "neuron" + std::to_string(index);
    dev.cores = visible_cores;
    dev.model = ReadValue(dir + "/info/architecture/device_name", inv, false).value_or("");
    if (dev.model.empty()) {
      dev.model = ReadValue(dir + "/info/architecture/arch_type", inv, false).value_or("");
    }
    dev.backend = "cpu";
    dev.note = "no Neuron backend: this device's sessions run on the CPU backend";
    listed.insert(index);
    inv->devices.push_back(std::move(dev));
  }
  if (o.visibility.neuron_devices.all) return;
  for (int index : o.visibility.neuron_devices.indices) {
    if (std::find(nodes.begin(), nodes.end(), index) == nodes.end()) {
      inv->warnings.push_back("AWS_NEURON_VISIBLE_DEVICES names device " + std::to_string(index) +
                              ", which this node does not have");
    }
  }
}

}  // namespace

std::string_view DeviceKindName(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu:
      return "cpu";
    case DeviceKind::kNvidiaGpu:
      return "nvidia-gpu";
    case DeviceKind::kNeuron:
      return "neuron";
  }
  return "unknown";
}

Inventory DiscoverDevices(const DiscoveryOptions& options) {
  Inventory inv;
  inv.devices.push_back(DiscoverCpu(options, &inv));
  DiscoverNvidia(options, &inv);
  DiscoverNeuron(options, &inv);
  return inv;
}

std::string DescribeDevice(const Device& d) {
  std::string s = d.id + "  " + std::string(DeviceKindName(d.kind)) + "  " +
                  (d.model.empty() ? "(model unknown)" : d.model);
  if (d.kind == DeviceKind::kCpu) {
    s += ", " + std::to_string(d.cores) + " cores, " + std::to_string(d.numa_nodes) + " NUMA node" +
         (d.numa_nodes == 1 ? "" : "s") + ", " + d.isa;
  }
  if (d.kind == DeviceKind::kNeuron) s += ", " + std::to_string(d.cores) + " NeuronCores";
  if (!d.pci_bus.empty()) s += ", " + d.pci_bus;
  if (!d.uuid.empty()) s += ", " + d.uuid;
  if (d.memory_total_bytes > 0) {
    s += ", " + std::to_string(d.memory_free_bytes >> 20) + "/" +
         std::to_string(d.memory_total_bytes >> 20) + " MiB free";
  }
  if (d.utilization_percent >= 0) s += ", " + std::to_string(d.utilization_percent) + " % busy";
  s += "; backend " + d.backend;
  if (!d.note.empty()) s += " (" + d.note + ")";
  return s;
}

}  // namespace agentry::devices
