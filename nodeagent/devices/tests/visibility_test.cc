// The device plugins' visibility variables: what each form selects, and the errors for
// values that cannot be meant.
#include "nodeagent/devices/visibility.h"

#include <gtest/gtest.h>

namespace agentry::devices {
namespace {

TEST(VisibilityTest, UnsetVariablesAllowEveryDevice) {
  StatusOr<Visibility> v = Visibility::FromValues(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->nvidia.all);
  EXPECT_TRUE(v->neuron_devices.AllowsIndex(17));
  EXPECT_TRUE(v->neuron_cores.AllowsIndex(0));
}

TEST(VisibilityTest, IndexListsTakeSinglesRangesSpacesAndAll) {
  StatusOr<DeviceSelection> s = ParseIndexList("X", " 0, 2-4 ,7");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->all);
  EXPECT_EQ(s->indices, (std::set<int>{0, 2, 3, 4, 7}));
  EXPECT_FALSE(s->AllowsIndex(1));
  StatusOr<DeviceSelection> all = ParseIndexList("X", "ALL");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->all);
}

TEST(VisibilityTest, BadIndexListsNameTheVariableAndTheEntry) {
  for (const char* bad : {"1,,2", "a", "3-1", "-2", "1-", "99999", "0-100000", "1.5"}) {
    StatusOr<DeviceSelection> s = ParseIndexList("NEURON_RT_VISIBLE_CORES", bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(std::string("NEURON_RT_VISIBLE_CORES=\"") + bad),
              std::string::npos)
        << s.status().message();
  }
  StatusOr<DeviceSelection> s = ParseIndexList("AWS_NEURON_VISIBLE_DEVICES", "0,x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "AWS_NEURON_VISIBLE_DEVICES=\"0,x\": \"x\" is not an index (0-4095) or a range such "
            "as 2-3");
}

TEST(VisibilityTest, NvidiaTakesIndicesUuidsAndTheNoGpuWords) {
  StatusOr<DeviceSelection> s =
      ParseNvidiaVisibleDevices("1, GPU-8f1c0000-0000-0000-0000-000000000000,MIG-abc");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->indices, (std::set<int>{1}));
  EXPECT_EQ(s->uuids.size(), 2u);
  for (const char* none : {"none", "void", "", "  "}) {
    StatusOr<DeviceSelection> n = ParseNvidiaVisibleDevices(none);
    ASSERT_TRUE(n.ok()) << none;
    EXPECT_FALSE(n->all);
    EXPECT_TRUE(n->indices.empty() && n->uuids.empty()) << none;
  }
  StatusOr<DeviceSelection> bad = ParseNvidiaVisibleDevices("0,gpu0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "NVIDIA_VISIBLE_DEVICES=\"0,gpu0\": \"gpu0\" is not a GPU index or a GPU-/MIG- UUID");
  StatusOr<Visibility> v = Visibility::FromValues("0,gpu0", std::nullopt, std::nullopt);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status(), bad.status());
}

}  // namespace
}  // namespace agentry::devices
