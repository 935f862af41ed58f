// A stand-in for the driver's libnvidia-ml.so.1, so the daemon's NVML loader (nvml.cc) is
// exercised through dlopen on machines without an NVIDIA driver. It exports the entry points
// the loader uses, with NVML's documented C signatures and return codes, and knows one GPU:
// bus 0000:18:00.0 with 80 GiB, 60 GiB free and 37 % utilisation. Bus 0000:2a:00.0 exists
// but reports no utilisation (as MIG slices do); any other bus is not found.
// FAKE_NVML_INIT_RESULT=N makes nvmlInit_v2 fail with N. Built without
// nvmlDeviceGetUtilizationRates when FAKE_NVML_OLD_DRIVER is defined.
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kSuccess = 0;
constexpr int kNotSupported = 3;
constexpr int kNotFound = 6;
constexpr int kDriverNotLoaded = 9;

int the_gpu = 0;  // handles point at these
int the_slice = 0;

}  // namespace

extern "C" {

struct FakeNvmlMemory {
  unsigned long long total;  // NOLINT(google-runtime-int): nvmlMemory_t's own types
  unsigned long long free;   // NOLINT(google-runtime-int)
  unsigned long long used;   // NOLINT(google-runtime-int)
};
struct FakeNvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};

__attribute__((visibility("default"))) int nvmlInit_v2() {
  const char* forced = std::getenv("FAKE_NVML_INIT_RESULT");
  return forced != nullptr ? static_cast<int>(std::strtol(forced, nullptr, 10)) : kSuccess;
}

__attribute__((visibility("default"))) int nvmlShutdown() { return kSuccess; }

__attribute__((visibility("default"))) const char* nvmlErrorString(int result) {
  switch (result) {
    case kSuccess:
      return "Success";
    case kNotSupported:
      return "Not Supported";
    case kNotFound:
      return "Not Found";
    case kDriverNotLoaded:
      return "Driver Not Loaded";
    default:
      return "Unknown Error";
  }
}

__attribute__((visibility("default"))) int nvmlDeviceGetHandleByPciBusId_v2(const char* bus,
                                                                            void** device) {
  if (std::strcmp(bus, "0000:18:00.0") == 0) {
    *device = &the_gpu;
    return kSuccess;
  }
  if (std::strcmp(bus, "0000:2a:00.0") == 0) {
    *device = &the_slice;
    return kSuccess;
  }
  return kNotFound;
}

__attribute__((visibility("default"))) int nvmlDeviceGetMemoryInfo(void* device,
                                                                   FakeNvmlMemory* memory) {
  if (device != &the_gpu && device != &the_slice) return kNotFound;
  memory->total = 80ULL << 30;
  memory->free = 60ULL << 30;
  memory->used = 20ULL << 30;
  return kSuccess;
}

#ifndef FAKE_NVML_OLD_DRIVER
__attribute__((visibility("default"))) int nvmlDeviceGetUtilizationRates(
    void* device, FakeNvmlUtilization* utilization) {
  if (device != &the_gpu) return kNotSupported;
  utilization->gpu = 37;
  utilization->memory = 12;
  return kSuccess;
}
#endif

}  // extern "C"
