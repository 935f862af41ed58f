// nodeagent/devices/nvml.h — GPU memory and utilisation from NVML, loaded with dlopen.
//
// The node daemon must start on nodes without the NVIDIA driver, so it never links NVML:
// it opens libnvidia-ml.so.1 at run time when the driver (or the container toolkit) put it
// there, and otherwise reports memory and utilisation as unknown.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace agentry::devices {

struct GpuUsage {
  uint64_t memory_total_bytes = 0;
  uint64_t memory_free_bytes = 0;
  int utilization_percent = -1;
};

class Nvml {
 public:
  // The driver's library is "libnvidia-ml.so.1" (found by the dynamic loader's search path);
  // tests name a stand-in by path. nullptr, with the reason in *why, when the library, an
  // entry point or its init is unavailable.
  static std::unique_ptr<Nvml> Open(const std::string& library, std::string* why);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // The GPU at `pci_bus` ("0000:18:00.0"); false, with the reason, when NVML cannot say.
  bool Query(const std::string& pci_bus, GpuUsage* usage, std::string* why) const;

 private:
  struct Api;
  explicit Nvml(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace agentry::devices
