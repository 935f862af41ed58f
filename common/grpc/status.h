// common/grpc/status.h — Agentry's Status across a gRPC boundary, both ways.
//
// StatusCode's values are gRPC's canonical codes (common/status.h), so the conversion keeps the
// code and the message; servers return ToGrpc(status), clients return FromGrpc(grpc_status).
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace agentry {

inline grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(s.code()), s.message()};
}

inline Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return OkStatus();
  return {static_cast<StatusCode>(s.error_code()), s.error_message()};
}

}  // namespace agentry
