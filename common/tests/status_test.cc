#include "common/status.h"

#include <memory>

#include <gtest/gtest.h>

namespace agentry {
namespace {

TEST(StatusTest, DefaultIsOkAndDropsMessage) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.ToString(), "OK");
  EXPECT_EQ(Status(StatusCode::kOk, "ignored").message(), "");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = InvalidArgumentError("spec.replicas: must be >= 0");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: spec.replicas: must be >= 0");
}

TEST(StatusTest, WithPrefixAddsContextButKeepsOk) {
  EXPECT_EQ(NotFoundError("no such file").WithPrefix("agent.yaml").message(),
            "agent.yaml: no such file");
  EXPECT_TRUE(OkStatus().WithPrefix("x").ok());
}

TEST(StatusTest, CodesMatchGrpcNumbering) {
  // Status crosses gRPC unchanged, so the numbers are part of the wire contract.
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(static_cast<int>(StatusCode::kResourceExhausted), 8);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnavailable), 14);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnauthenticated), 16);
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition), "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(99)), "UNKNOWN_CODE");
}

TEST(StatusTest, HttpMapping) {
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kUnauthenticated), 401);
}

StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("not positive");
  return v;
}

Status UseAssign(int v, int* out) {
  AGENTRY_ASSIGN_OR_RETURN(*out, ParsePositive(v));
  return OkStatus();
}

Status UseReturnIfError(int v) {
  AGENTRY_RETURN_IF_ERROR(ParsePositive(v).status());
  return OkStatus();
}

TEST(StatusOrTest, ValueAndError) {
  StatusOr<int> good = ParsePositive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  StatusOr<int> bad = ParsePositive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(StatusOrTest, MoveOnlyValue) {
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(7);
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> taken = std::move(p).value();
  EXPECT_EQ(*taken, 7);
}

TEST(StatusOrTest, Macros) {
  int out = 0;
  EXPECT_TRUE(UseAssign(5, &out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_EQ(UseAssign(0, &out).message(), "not positive");
  EXPECT_EQ(out, 5);
  EXPECT_TRUE(UseReturnIfError(1).ok());
  EXPECT_FALSE(UseReturnIfError(-2).ok());
}

TEST(StatusOrDeathTest, ValueOfErrorAborts) {
  StatusOr<int> bad = InvalidArgumentError("boom");
  EXPECT_DEATH((void)bad.value(), "INVALID_ARGUMENT: boom");
}

TEST(StatusOrDeathTest, OkStatusWithoutValueAborts) {
  EXPECT_DEATH(StatusOr<int>{OkStatus()}, "without a value");
}

}  // namespace
}  // namespace agentry
