// nodeagent/devices/discovery.h — the devices of this node that this daemon may use.
//
//   DiscoveryOptions options;                       // real /dev, /proc, /sys
//   StatusOr<Visibility> vis = Visibility::FromEnvironment();
//   options.visibility = *vis;
//   Inventory inv = DiscoverDevices(options);
//   for (const Device& d : inv.devices) ...          // "cpu", "nvidia0", "neuron1", ...
//
// Sources, all under configurable roots so tests build fake trees for GPU and Neuron nodes:
//   CPU      sysfs devices/system/cpu/online and node/node*, this process's affinity mask,
//            and CPUID (the ISA features the kernels dispatch on);
//   NVIDIA   /dev/nvidiaN and the driver's /proc/driver/nvidia/gpus/<bus>/information; NVML
//            (dlopen'ed, when the driver ships it) for memory and utilisation;
//   Neuron   /dev/neuronN and sysfs devices/virtual/neuron_device/neuronN (core_count, the
//            architecture's device_name).
// Discovery never fails: what cannot be read is reported in `warnings`, naming the file.
//
// Until a device kind has a compute backend, its sessions run on the CPU backend, and the
// Device says so (`backend`, `note`) for ListDevices, logs and metrics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/devices/visibility.h"

namespace agentry::devices {

enum class DeviceKind { kCpu, kNvidiaGpu, kNeuron };
std::string_view DeviceKindName(DeviceKind kind);  // "cpu", "nvidia-gpu", "neuron"

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;        // N of /dev/nvidiaN or /dev/neuronN; 0 for the CPU
  std::string id;       // "cpu", "nvidia0", "neuron0": the name in APIs, logs and metrics
  std::string model;    // "NVIDIA H100 80GB HBM3", "Trainium2", the CPU brand; "" unknown
  std::string uuid;     // NVIDIA GPU UUID ("GPU-…")
  std::string pci_bus;  // "0000:18:00.0" (NVIDIA)
  int cores = 0;        // CPU: cores this process may run on; Neuron: visible NeuronCores
  int numa_nodes = 0;   // CPU only
  std::string isa;      // CPU only: the CPUID features ("avx2 fma f16c avx512f ...")
  uint64_t memory_total_bytes = 0;  // 0: unknown (no NVML)
  uint64_t memory_free_bytes = 0;
  int utilization_percent = -1;  // -1: unknown
  std::string backend = "cpu";   // the compute backend that serves this device's sessions
  std::string note;              // why the backend is not the device's own, and so on
};

struct Inventory {
  std::vector<Device> devices;        // the CPU first, then GPUs, then Neuron devices
  std::vector<std::string> warnings;  // unreadable files, visibility naming absent devices
};

struct DiscoveryOptions {
  std::string dev_root = "/dev";
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  Visibility visibility;
  bool use_affinity = true;  // count only CPUs in this process's affinity mask (cgroup cpuset)
  // NVML, queried for GPU memory and utilisation when it loads; empty: do not query.
  std::string nvml_library = "libnvidia-ml.so.1";
};

Inventory DiscoverDevices(const DiscoveryOptions& options);

// One line per device for logs and `agentry devices`: "nvidia0  NVIDIA H100 …  backend cpu (…)".
std::string DescribeDevice(const Device& device);

}  // namespace agentry::devices
