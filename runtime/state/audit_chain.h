// runtime/state/audit_chain.h — the audit log's hash chain.
//
// A record's hash is SHA-256 (hex) over the previous record's hash followed by the record's
// canonical JSON: an object of action, actor, details (the record's details object), seq,
// session_id and time_unix_ms, keys sorted, no whitespace, UTF-8 as is. The first record's
// previous hash is 64 zeros. Editing, removing, inserting or reordering records breaks the
// chain at the first record touched, which AuditChainVerifier names.
#pragma once

#include <cstdint>
#include <string>

#include "agentry/state/v1/state.pb.h"

#include "common/status.h"

namespace agentry::state {

inline constexpr char kAuditGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// `details_json` as the chain hashes it: parsed and written back canonically. InvalidArgument
// when it is not a JSON object ("" is the empty object).
StatusOr<std::string> CanonicalDetails(const std::string& details_json);

// The canonical JSON of `record` (its details_json already canonical) and its chained hash.
std::string AuditCanonicalJson(const agentry::state::v1::AuditRecord& record);
std::string AuditRecordHash(const std::string& prev_hash,
                            const agentry::state::v1::AuditRecord& record);

// Checks records in order of seq, one at a time (the log may be larger than memory).
class AuditChainVerifier {
 public:
  // False once a record fails; the first failure is kept.
  bool Add(const agentry::state::v1::AuditRecord& record);
  const agentry::state::v1::VerifyAuditResponse& result() const { return result_; }

 private:
  agentry::state::v1::VerifyAuditResponse result_ = [] {
    agentry::state::v1::VerifyAuditResponse r;
    r.set_ok(true);
    r.set_head_hash(kAuditGenesisHash);
    return r;
  }();
};

}  // namespace agentry::state
