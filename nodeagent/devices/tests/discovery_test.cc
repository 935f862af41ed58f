// Device discovery against fake /dev, /proc and /sys trees of a GPU node and a Neuron node,
// with and without the device plugins' visibility variables.
#include "nodeagent/devices/discovery.h"

#include <sched.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace agentry::devices {
namespace {

namespace fs = std::filesystem;

class FakeNode {
 public:
  FakeNode() {
    std::string tmpl = (fs::temp_directory_path() / "agentry-devices-XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
    Write("sys/devices/system/cpu/online", "0-7\n");
    Write("sys/devices/system/node/node0/cpulist", "0-3\n");
    Write("sys/devices/system/node/node1/cpulist", "4-7\n");
    Write("sys/devices/system/node/online", "0-1\n");  // not a node directory
    fs::create_directories(root_ + "/dev");
    fs::create_directories(root_ + "/proc");
  }
  ~FakeNode() { fs::remove_all(root_); }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  void Write(const std::string& rel, const std::string& text) {
    const fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void AddGpu(int minor, const std::string& bus, const std::string& model,
              const std::string& uuid) {
    Write("dev/nvidia" + std::to_string(minor), "");
    Write("proc/driver/nvidia/gpus/" + bus + "/information",
          "Model: \t\t " + model + "\nIRQ:   \t\t 112\nGPU UUID: \t " + uuid +
              "\nVideo BIOS: \t 96.00.74.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\n"
              "Bus Location: \t " +
              bus + "\nDevice Minor: \t " + std::to_string(minor) + "\nGPU Excluded:\t No\n");
  }
  void AddNeuron(int index, int cores, const std::string& name) {
    Write("dev/neuron" + std::to_string(index), "");
    const std::string dir = "sys/devices/virtual/neuron_device/neuron" + std::to_string(index);
    Write(dir + "/core_count", std::to_string(cores) + "\n");
    Write(dir + "/info/architecture/device_name", name + "\n");
    Write(dir + "/info/architecture/arch_type", "NCv3\n");
  }

  DiscoveryOptions Options(const Visibility& visibility = {}) const {
    DiscoveryOptions o;
    o.dev_root = root_ + "/dev";
    o.proc_root = root_ + "/proc";
    o.sys_root = root_ + "/sys";
    o.visibility = visibility;
    o.use_affinity = false;  // the fake tree's CPUs, not this machine's
    o.nvml_library.clear();  // each NVML test names its stand-in
    return o;
  }

 private:
  std::string root_;
};

Visibility Vis(std::optional<std::string_view> nvidia, std::optional<std::string_view> neuron,
               std::optional<std::string_view> cores) {
  StatusOr<Visibility> v = Visibility::FromValues(nvidia, neuron, cores);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : Visibility{};
}

std::vector<std::string> Ids(const Inventory& inv) {
  std::vector<std::string> ids;
  for (const Device& d : inv.devices) ids.push_back(d.id);
  return ids;
}

TEST(DiscoveryTest, CpuOnlyNodeHasOneCpuDeviceWithItsCoresAndNumaNodes) {
  FakeNode node;
  const Inventory inv = DiscoverDevices(node.Options());
  ASSERT_EQ(Ids(inv), (std::vector<std::string>{"cpu"}));
  const Device& cpu = inv.devices[0];
  EXPECT_EQ(cpu.kind, DeviceKind::kCpu);
  EXPECT_EQ(cpu.cores, 8);
  EXPECT_EQ(cpu.numa_nodes, 2);
  EXPECT_EQ(cpu.backend, "cpu");
  EXPECT_TRUE(inv.warnings.empty()) << inv.warnings[0];
}

TEST(DiscoveryTest, GpuNodeListsEachGpuWithTheDriversFactsAndSaysTheCpuBackendServesIt) {
  FakeNode node;
  node.Write("dev/nvidiactl", "");
  node.Write("dev/nvidia-uvm", "");
  node.AddGpu(0, "0000:18:00.0", "NVIDIA H100 80GB HBM3",
              "GPU-11111111-2222-3333-4444-555555555555");
  node.AddGpu(1, "0000:2a:00.0", "NVIDIA H100 80GB HBM3",
              "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  const Inventory inv = DiscoverDevices(node.Options());
  ASSERT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "nvidia0", "nvidia1"}));
  const Device& gpu = inv.devices[2];
  EXPECT_EQ(gpu.kind, DeviceKind::kNvidiaGpu);
  EXPECT_EQ(gpu.index, 1);
  EXPECT_EQ(gpu.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpu.uuid, "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_EQ(gpu.pci_bus, "0000:2a:00.0");
  EXPECT_EQ(gpu.backend, "cpu");
  EXPECT_NE(gpu.note.find("no CUDA backend"), std::string::npos) << gpu.note;
  EXPECT_NE(DescribeDevice(gpu).find("backend cpu (no CUDA backend"), std::string::npos);
  EXPECT_TRUE(inv.warnings.empty()) << inv.warnings[0];
}

// A GPU node whose NVML is the stand-in in fake_nvml.cc: the loader's signatures, handles and
// return codes, through dlopen as on a real node.
class NvmlDiscoveryTest : public ::testing::Test {
 protected:
  NvmlDiscoveryTest() {
    node_.AddGpu(0, "0000:18:00.0", "NVIDIA H100 80GB HBM3",
                 "GPU-11111111-2222-3333-4444-555555555555");
    node_.AddGpu(1, "0000:2a:00.0", "NVIDIA H100 80GB HBM3",
                 "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    node_.AddGpu(2, "0000:3b:00.0", "NVIDIA H100 80GB HBM3",
                 "GPU-99999999-8888-7777-6666-555555555555");
  }
  ~NvmlDiscoveryTest() override { unsetenv("FAKE_NVML_INIT_RESULT"); }

  Inventory Discover(const std::string& library) const {
    DiscoveryOptions o = node_.Options();
    o.nvml_library = library;
    return DiscoverDevices(o);
  }

  FakeNode node_;
};

TEST_F(NvmlDiscoveryTest, GpusGetMemoryAndUtilisationFromNvmlByTheirBus) {
  const Inventory inv = Discover(AGENTRY_FAKE_NVML);
  ASSERT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "nvidia0", "nvidia1", "nvidia2"}));
  const Device& gpu = inv.devices[1];
  EXPECT_EQ(gpu.memory_total_bytes, uint64_t{80} << 30);
  EXPECT_EQ(gpu.memory_free_bytes, uint64_t{60} << 30);
  EXPECT_EQ(gpu.utilization_percent, 37);
  EXPECT_EQ(gpu.note.find("unknown"), std::string::npos) << gpu.note;

  // Utilisation is optional: its memory still stands.
  const Device& slice = inv.devices[2];
  EXPECT_EQ(slice.memory_total_bytes, uint64_t{80} << 30);
  EXPECT_EQ(slice.utilization_percent, -1);
  EXPECT_EQ(slice.note.find("unknown"), std::string::npos) << slice.note;

  // A GPU NVML does not know is listed with its memory unknown and NVML's reason.
  const Device& unknown = inv.devices[3];
  EXPECT_EQ(unknown.memory_total_bytes, 0U);
  EXPECT_EQ(unknown.utilization_percent, -1);
  EXPECT_NE(
      unknown.note.find("memory and utilisation unknown: nvmlDeviceGetHandleByPciBusId_v2 failed: "
                        "Not Found"),
      std::string::npos)
      << unknown.note;
}

TEST_F(NvmlDiscoveryTest, AFailedInitLeavesEveryGpuListedWithNvmlsReason) {
  setenv("FAKE_NVML_INIT_RESULT", "9", 1);
  const Inventory inv = Discover(AGENTRY_FAKE_NVML);
  ASSERT_EQ(inv.devices.size(), 4U);
  for (size_t i = 1; i < inv.devices.size(); ++i) {
    EXPECT_EQ(inv.devices[i].memory_total_bytes, 0U);
    EXPECT_NE(inv.devices[i].note.find("nvmlInit_v2 failed: Driver Not Loaded"), std::string::npos)
        << inv.devices[i].note;
  }
}

TEST_F(NvmlDiscoveryTest, AMissingLibraryOrEntryPointIsSaidNotFatal) {
  const Inventory absent = Discover(std::string("/nonexistent-agentry") + "/no/libnvidia-ml.so.1");
  ASSERT_EQ(absent.devices.size(), 4U);
  EXPECT_NE(absent.devices[1].note.find("NVML not loaded ("), std::string::npos)
      << absent.devices[1].note;
  EXPECT_NE(absent.devices[1].note.find("libnvidia-ml.so.1"), std::string::npos)
      << absent.devices[1].note;

  const Inventory old = Discover(AGENTRY_FAKE_NVML_OLD);
  ASSERT_EQ(old.devices.size(), 4U);
  EXPECT_EQ(old.devices[1].memory_total_bytes, 0U);
  EXPECT_NE(old.devices[1].note.find("NVML lacks nvmlDeviceGetUtilizationRates"), std::string::npos)
      << old.devices[1].note;
}

TEST(DiscoveryTest, NvidiaVisibleDevicesSelectsByIndexOrUuidAndNamesAbsentOnes) {
  FakeNode node;
  node.AddGpu(0, "0000:18:00.0", "GPU A", "GPU-00000000-0000-0000-0000-000000000000");
  node.AddGpu(1, "0000:2a:00.0", "GPU B", "GPU-11111111-1111-1111-1111-111111111111");
  node.AddGpu(2, "0000:3a:00.0", "GPU C", "GPU-22222222-2222-2222-2222-222222222222");
  EXPECT_EQ(Ids(DiscoverDevices(node.Options(Vis("2", {}, {})))),
            (std::vector<std::string>{"cpu", "nvidia2"}));
  EXPECT_EQ(
      Ids(DiscoverDevices(node.Options(Vis("0,GPU-11111111-1111-1111-1111-111111111111", {}, {})))),
      (std::vector<std::string>{"cpu", "nvidia0", "nvidia1"}));
  for (const char* none : {"none", "void", ""}) {
    EXPECT_EQ(Ids(DiscoverDevices(node.Options(Vis(none, {}, {})))),
              (std::vector<std::string>{"cpu"}))
        << none;
  }
  EXPECT_EQ(Ids(DiscoverDevices(node.Options(Vis("all", {}, {})))).size(), 4u);
  const Inventory inv = DiscoverDevices(node.Options(Vis("1,7", {}, {})));
  EXPECT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "nvidia1"}));
  ASSERT_EQ(inv.warnings.size(), 1u);
  EXPECT_EQ(inv.warnings[0], "NVIDIA_VISIBLE_DEVICES names GPU 7, which this node does not have");
}

TEST(DiscoveryTest, NeuronNodeListsDevicesWithTheirVisibleCores) {
  FakeNode node;
  for (int i = 0; i < 4; ++i) node.AddNeuron(i, 2, "Trainium");
  node.Write("dev/neuron_ctl", "");  // not a device
  Inventory inv = DiscoverDevices(node.Options());
  ASSERT_EQ(Ids(inv),
            (std::vector<std::string>{"cpu", "neuron0", "neuron1", "neuron2", "neuron3"}));
  EXPECT_EQ(inv.devices[1].cores, 2);
  EXPECT_EQ(inv.devices[1].model, "Trainium");
  EXPECT_NE(inv.devices[1].note.find("no Neuron backend"), std::string::npos);

  // The plugin's device list, then its core list: cores 3-4 are neuron1's second and
  // neuron2's first core.
  EXPECT_EQ(Ids(DiscoverDevices(node.Options(Vis({}, "1-2", {})))),
            (std::vector<std::string>{"cpu", "neuron1", "neuron2"}));
  inv = DiscoverDevices(node.Options(Vis({}, {}, "3-4")));
  ASSERT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "neuron1", "neuron2"}));
  EXPECT_EQ(inv.devices[1].cores, 1);
  EXPECT_EQ(inv.devices[2].cores, 1);

  inv = DiscoverDevices(node.Options(Vis({}, "0,9", {})));
  EXPECT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "neuron0"}));
  ASSERT_EQ(inv.warnings.size(), 1u);
  EXPECT_NE(inv.warnings[0].find("device 9, which this node does not have"), std::string::npos);
}

TEST(DiscoveryTest, UnreadableOrGarbledFilesBecomeWarningsThatNameTheFile) {
  FakeNode node;
  node.AddNeuron(0, 2, "Inferentia2");
  node.Write("sys/devices/virtual/neuron_device/neuron0/core_count", "lots\n");
  node.Write("dev/nvidia3", "");  // a device node the driver does not describe
  node.Write("proc/driver/nvidia/gpus/0000:99:00.0/information", "Model: \t X\n");  // no minor
  node.Write("sys/devices/system/cpu/online", "0-x\n");
  const Inventory inv = DiscoverDevices(node.Options());
  EXPECT_EQ(Ids(inv), (std::vector<std::string>{"cpu", "nvidia3", "neuron0"}));
  std::string all;
  for (const std::string& w : inv.warnings) all += w + "\n";
  EXPECT_NE(all.find("core_count: \"lots\" is not a count"), std::string::npos) << all;
  EXPECT_NE(all.find("nvidia3: the driver's /proc information lists no GPU"), std::string::npos)
      << all;
  EXPECT_NE(all.find("0000:99:00.0/information: no \"Device Minor\" line"), std::string::npos)
      << all;
  EXPECT_NE(all.find("online=\"0-x\""), std::string::npos) << all;
}

TEST(DiscoveryTest, MissingTreesGiveACpuDeviceAndWarningsNotAFailure) {
  DiscoveryOptions o;
  o.dev_root = "/nonexistent/dev";
  o.proc_root = "/nonexistent/proc";
  o.sys_root = "/nonexistent/sys";
  o.use_affinity = false;
  const Inventory inv = DiscoverDevices(o);
  EXPECT_EQ(Ids(inv), (std::vector<std::string>{"cpu"}));
  ASSERT_FALSE(inv.warnings.empty());
  EXPECT_NE(inv.warnings[0].find("/nonexistent/sys/devices/system/cpu/online"), std::string::npos);
}

TEST(DiscoveryTest, ThisMachineHasACpuDeviceWithTheCoresThisProcessMayUse) {
  const Inventory inv = DiscoverDevices(DiscoveryOptions{});
  ASSERT_FALSE(inv.devices.empty());
  EXPECT_EQ(inv.devices[0].id, "cpu");
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  EXPECT_EQ(inv.devices[0].cores, CPU_COUNT(&mask));
  EXPECT_GE(inv.devices[0].numa_nodes, 1);
}

}  // namespace
}  // namespace agentry::devices
