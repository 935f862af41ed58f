#include "runtime/state/audit_chain.h"

#include <nlohmann/json.hpp>

#include "common/sha256.h"

namespace agentry::state {

StatusOr<std::string> CanonicalDetails(const std::string& details_json) {
  if (details_json.empty()) return std::string("{}");
  const nlohmann::json parsed =
      nlohmann::json::parse(details_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgumentError("details_json: not a JSON object");
  }
  // nlohmann's objects keep their keys sorted, and dump() writes no whitespace.
  return parsed.dump();
}

std::string AuditCanonicalJson(const v1::AuditRecord& record) {
  nlohmann::json j = nlohmann::json::object();
  j["action"] = record.action();
  j["actor"] = record.actor();
  j["details"] = nlohmann::json::parse(record.details_json(), nullptr, /*allow_exceptions=*/false);
  j["seq"] = record.seq();
  j["session_id"] = record.session_id();
  j["time_unix_ms"] = record.time_unix_ms();
  return j.dump();
}

std::string AuditRecordHash(const std::string& prev_hash, const v1::AuditRecord& record) {
  Sha256 digest;
  digest.Update(prev_hash);
  digest.Update(AuditCanonicalJson(record));
  return digest.FinishHex();
}

bool AuditChainVerifier::Add(const v1::AuditRecord& record) {
  if (!result_.ok()) return false;
  const auto fail = [&](const std::string& reason) {
    result_.set_ok(false);
    result_.set_first_bad_seq(record.seq());
    result_.set_reason("record " + std::to_string(record.seq()) + ": " + reason);
    return false;
  };
  const int64_t expected_seq = result_.records() + 1;
  if (record.seq() != expected_seq) {
    return fail("expected seq " + std::to_string(expected_seq) +
                " (a record is missing or out of order)");
  }
  if (record.prev_hash() != result_.head_hash()) {
    return fail("prev_hash does not match the previous record's hash");
  }
  if (AuditRecordHash(record.prev_hash(), record) != record.hash()) {
    return fail("hash does not match the record's contents (the record was altered)");
  }
  result_.set_records(expected_seq);
  result_.set_head_hash(record.hash());
  return true;
}

}  // namespace agentry::state
