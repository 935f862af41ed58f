// nodeagent/devices/nvml.cc — see nvml.h. The few NVML entry points used are declared here
// by their documented C signatures; no NVIDIA header is needed at build time.
#include "nodeagent/devices/nvml.h"

#include <dlfcn.h>

#include <cstdint>
#include <type_traits>

namespace agentry::devices {

// The NVML types used, nested here so that only this struct names them.
struct Nvml::Api {
  using Return = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
  using Device = void*;
  struct Memory {  // nvmlMemory_t: three unsigned long long, 64 bits on every LP64 target
    uint64_t total;
    uint64_t free;
    uint64_t used;
  };
  static_assert(sizeof(uint64_t) == sizeof(unsigned long long));  // NOLINT(google-runtime-int)
  // nvmlUtilization_t
  struct Utilization {
    unsigned int gpu;
    unsigned int memory;
  };

  void* library = nullptr;
  Return (*shutdown)() = nullptr;
  Return (*handle_by_pci_bus_id)(const char*, Device*) = nullptr;
  Return (*memory_info)(Device, Memory*) = nullptr;
  Return (*utilization_rates)(Device, Utilization*) = nullptr;
  const char* (*error_string)(Return) = nullptr;

  std::string Error(const char* call, Return r) const {
    return std::string(call) +
           " failed: " + (error_string != nullptr ? error_string(r) : "error " + std::to_string(r));
  }
};

std::unique_ptr<Nvml> Nvml::Open(const std::string& library, std::string* why) {
  auto api = std::make_unique<Api>();
  api->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->library == nullptr) {
    *why = "NVML not loaded (" + std::string(dlerror()) + ")";
    return nullptr;
  }
  std::string missing;  // the first required entry point the library lacks
  const auto bind = [&](auto* fn, const char* name, bool required = true) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(api->library, name));
    if (*fn == nullptr && required && missing.empty()) missing = name;
  };
  Api::Return (*init)() = nullptr;
  bind(&init, "nvmlInit_v2");
  bind(&api->shutdown, "nvmlShutdown");
  bind(&api->handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
  bind(&api->memory_info, "nvmlDeviceGetMemoryInfo");
  bind(&api->utilization_rates, "nvmlDeviceGetUtilizationRates");
  bind(&api->error_string, "nvmlErrorString", /*required=*/false);
  if (!missing.empty()) {
    *why = "NVML lacks " + missing + ", which this daemon uses (driver too old?)";
    dlclose(api->library);
    return nullptr;
  }
  if (const Api::Return r = init(); r != 0) {
    *why = api->Error("nvmlInit_v2", r);
    dlclose(api->library);
    return nullptr;
  }
  return std::unique_ptr<Nvml>(new Nvml(std::move(api)));
}

Nvml::Nvml(std::unique_ptr<Api> api) : api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(api_->library);
}

bool Nvml::Query(const std::string& pci_bus, GpuUsage* usage, std::string* why) const {
  Api::Device device = nullptr;
  if (const Api::Return r = api_->handle_by_pci_bus_id(pci_bus.c_str(), &device); r != 0) {
    *why = api_->Error("nvmlDeviceGetHandleByPciBusId_v2", r);
    return false;
  }
  Api::Memory memory{};
  if (const Api::Return r = api_->memory_info(device, &memory); r != 0) {
    *why = api_->Error("nvmlDeviceGetMemoryInfo", r);
    return false;
  }
  usage->memory_total_bytes = memory.total;
  usage->memory_free_bytes = memory.free;
  Api::Utilization utilization{};
  // Utilisation is optional (some GPUs and MIG slices do not report it): memory stands.
  if (api_->utilization_rates(device, &utilization) == 0) {
    usage->utilization_percent = static_cast<int>(utilization.gpu);
  }
  return true;
}

}  // namespace agentry::devices
