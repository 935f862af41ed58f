#include "common/file.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace agentry {
namespace {

TEST(FileTest, ReadsEveryByte) {
  char path[] = "/tmp/agentry-file-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string bytes("a\0b\nc", 5);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), 5);
  close(fd);
  StatusOr<std::string> got = ReadFileToString(path);
  unlink(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, bytes);
}

TEST(FileTest, MissingFileNamesThePath) {
  StatusOr<std::string> got = ReadFileToString("/nonexistent/x.yaml");
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "/nonexistent/x.yaml: cannot open (No such file or directory)");
}

}  // namespace
}  // namespace agentry
