// train/checkpoint.cc — see checkpoint.h. Layout:
//   "AGTRCKPT" | u32 version | u64 header length | header JSON | u64 vocab length | vocab GGUF
//   | u64 n | params f32[n] | m f32[n] | v f32[n] | u32 CRC-32C of everything before it
// Integers and floats are little-endian, as on every machine the engine runs on.
#include "train/checkpoint.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/crc32c.h"
#include "nodeagent/engine/gguf_writer.h"

namespace agentry::train {
namespace {

constexpr char kMagic[8] = {'A', 'G', 'T', 'R', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

void PutFloats(std::string* out, const std::vector<float>& v) {
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Reads from a byte string, failing (not crashing) past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* v) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(uint64_t n, std::string* out) {
    if (bytes_.size() - pos_ < n) return false;
    out->assign(bytes_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool GetFloats(uint64_t n, std::vector<float>* out) {
    if ((bytes_.size() - pos_) / sizeof(float) < n) return false;
    out->resize(n);
    std::memcpy(out->data(), bytes_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

nlohmann::json HistoryToJson(const std::vector<LossPoint>& history) {
  nlohmann::json out = nlohmann::json::array();
  for (const LossPoint& p : history) {
    out.push_back({p.step, p.loss, p.eval_loss, p.lr, p.seconds});
  }
  return out;
}

bool HistoryFromJson(const nlohmann::json& j, std::vector<LossPoint>* history) {
  if (!j.is_array()) return false;
  for (const auto& row : j) {
    if (!row.is_array() || row.size() != 5) return false;
    for (const auto& v : row) {
      if (!v.is_number()) return false;
    }
    history->push_back({row[0].get<int64_t>(), row[1].get<double>(), row[2].get<double>(),
                        row[3].get<double>(), row[4].get<double>()});
  }
  return true;
}

}  // namespace

Status SaveCheckpoint(const std::string& path, const Checkpoint& c) {
  nlohmann::json header = {{"options", c.options},
                           {"step", c.step},
                           {"cursor", c.cursor},
                           {"seconds", c.seconds},
                           {"history", HistoryToJson(c.history)}};
  const std::string header_text = header.dump();
  std::string out(kMagic, sizeof(kMagic));
  Put(&out, kVersion);
  Put(&out, static_cast<uint64_t>(header_text.size()));
  out += header_text;
  Put(&out, static_cast<uint64_t>(c.vocab_gguf.size()));
  out += c.vocab_gguf;
  Put(&out, static_cast<uint64_t>(c.params.size()));
  PutFloats(&out, c.params);
  PutFloats(&out, c.m);
  PutFloats(&out, c.v);
  Put(&out, Crc32c(out));
  return engine::WriteFileAtomically(path, out);
}

StatusOr<Checkpoint> LoadCheckpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("no checkpoint at " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  auto bad = [&](const std::string& what) { return DataLossError(path + ": " + what); };
  if (bytes.size() < sizeof(kMagic) + 4 + 4 || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    return bad("not an agentry training checkpoint");
  }
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
  const std::string_view body = std::string_view{bytes}.substr(0, bytes.size() - 4);
  if (Crc32c(body) != stored_crc) {
    return bad("checksum mismatch (the file is truncated or damaged)");
  }
  Reader r(body);
  char magic[8];
  uint32_t version = 0;
  r.Get(&magic);
  if (!r.Get(&version) || version != kVersion) {
    return bad("format version " + std::to_string(version) + ", this build reads " +
               std::to_string(kVersion));
  }
  uint64_t header_len = 0;
  std::string header_text;
  if (!r.Get(&header_len) || !r.GetBytes(header_len, &header_text)) {
    return bad("truncated header");
  }
  const nlohmann::json header = nlohmann::json::parse(header_text, nullptr, false);
  Checkpoint c;
  auto field = [&](const char* key) {
    return header.is_object() && header.contains(key) ? header.at(key) : nlohmann::json();
  };
  if (!field("options").is_object() || !field("step").is_number_integer() ||
      !field("cursor").is_number_unsigned() || !field("seconds").is_number() ||
      !HistoryFromJson(field("history"), &c.history)) {
    return bad("malformed header");
  }
  c.options = field("options");
  c.step = field("step").get<int64_t>();
  c.cursor = field("cursor").get<uint64_t>();
  c.seconds = field("seconds").get<double>();
  uint64_t vocab_len = 0;
  uint64_t n = 0;
  if (!r.Get(&vocab_len) || !r.GetBytes(vocab_len, &c.vocab_gguf) || !r.Get(&n) ||
      !r.GetFloats(n, &c.params) || !r.GetFloats(n, &c.m) || !r.GetFloats(n, &c.v)) {
    return bad("truncated body");
  }
  return c;
}

}  // namespace agentry::train
