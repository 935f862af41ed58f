#include "nodeagent/engine/test_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quants.h"
#include "nodeagent/engine/gguf_writer.h"

namespace agentry::engine {
namespace {

// splitmix64: small, fast, and the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t state_;
};

// `rows` rows of `cols` values, each q * d with q in [-127, 127] and d an fp16 per block of
// 32 around amp / 127: exactly what a Q8_0 block stores.
std::vector<kernels::block_q8_0> RandomBlocks(Rng* rng, int64_t rows, int64_t cols, double amp) {
  std::vector<kernels::block_q8_0> blocks(static_cast<size_t>(rows * cols / 32));
  for (kernels::block_q8_0& b : blocks) {
    b.d = kernels::fp32_to_fp16(static_cast<float>(amp / 127.0 * (0.5 + rng->Uniform())));
    for (int8_t& q : b.qs) q = static_cast<int8_t>(static_cast<int>(rng->Next() % 255) - 127);
  }
  return blocks;
}

// `values` in a 32-weight block format, written by its reference quantizer.
template <typename Block, void (*quantize)(const float*, Block*, int64_t)>
std::string QuantizeWith(const std::vector<float>& values) {
  std::vector<Block> q(values.size() / 32);
  quantize(values.data(), q.data(), static_cast<int64_t>(values.size()));
  return std::string(reinterpret_cast<const char*>(q.data()), q.size() * sizeof(Block));
}

std::string Encode(const std::vector<kernels::block_q8_0>& blocks, GgmlType type) {
  const int64_t n = static_cast<int64_t>(blocks.size()) * 32;
  if (type == GgmlType::kQ8_0) {
    return std::string(reinterpret_cast<const char*>(blocks.data()),
                       blocks.size() * sizeof(blocks[0]));
  }
  std::vector<float> values(static_cast<size_t>(n));
  kernels::dequantize_row_q8_0(blocks.data(), values.data(), n);
  switch (type) {
    case GgmlType::kF16: {
      std::vector<uint16_t> h(values.size());
      kernels::convert_row_fp32_to_fp16_ref(values.data(), h.data(), n);
      return std::string(reinterpret_cast<const char*>(h.data()), h.size() * 2);
    }
    case GgmlType::kBF16: {
      std::vector<uint16_t> h(values.size());
      kernels::convert_row_fp32_to_bf16_ref(values.data(), h.data(), n);
      return std::string(reinterpret_cast<const char*>(h.data()), h.size() * 2);
    }
    case GgmlType::kQ4_0:
      return QuantizeWith<kernels::block_q4_0, &kernels::quantize_row_q4_0_ref>(values);
    case GgmlType::kQ4_1:
      return QuantizeWith<kernels::block_q4_1, &kernels::quantize_row_q4_1_ref>(values);
    case GgmlType::kQ5_0:
      return QuantizeWith<kernels::block_q5_0, &kernels::quantize_row_q5_0_ref>(values);
    case GgmlType::kQ5_1:
      return QuantizeWith<kernels::block_q5_1, &kernels::quantize_row_q5_1_ref>(values);
    default:
      return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  }
}

std::string EncodeF32(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

void CopyVocab(const GgufFile& vocab, GgufWriter* w, int64_t* n_vocab) {
  for (const GgufKv& kv : vocab.metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    const std::string key(kv.key);
    const GgufValue& v = kv.value;
    switch (v.type) {
      case GgufValueType::kString:
        w->SetString(key, v.str);
        break;
      case GgufValueType::kBool:
        w->SetBool(key, v.b);
        break;
      case GgufValueType::kUint32:
        w->SetUint32(key, static_cast<uint32_t>(v.u));
        break;
      case GgufValueType::kInt32:
        w->SetInt32(key, static_cast<int32_t>(v.i));
        break;
      case GgufValueType::kArray:
        if (v.array_type == GgufValueType::kString) {
          w->SetStringArray(key, std::vector<std::string>(v.strings.begin(), v.strings.end()));
          if (key == "tokenizer.ggml.tokens") *n_vocab = static_cast<int64_t>(v.strings.size());
        } else if (v.array_type == GgufValueType::kFloat32) {
          std::vector<float> f(v.array_count);
          for (uint64_t i = 0; i < v.array_count; ++i) f[i] = v.ArrayElement<float>(i);
          w->SetFloat32Array(key, f);
        } else if (v.array_type == GgufValueType::kInt32) {
          std::vector<int32_t> a(v.array_count);
          for (uint64_t i = 0; i < v.array_count; ++i) a[i] = v.ArrayElement<int32_t>(i);
          w->SetInt32Array(key, a);
        }
        break;
      default:
        break;  // other scalar types do not occur in tokenizer metadata
    }
  }
}

// <unk> <s> </s>, the 256 byte tokens, then "▁" + letters and short words.
void SyntheticVocab(GgufWriter* w, int64_t* n_vocab) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.emplace_back(name);
    types.push_back(6);
  }
  const std::string space = "\xE2\x96\x81";
  tokens.push_back(space);
  types.push_back(1);
  for (char c = 'a'; c <= 'z'; ++c) {
    tokens.emplace_back(1, c);
    tokens.push_back(space + c);
    types.push_back(1);
    types.push_back(1);
  }
  // Every prefix of each word, so that pairwise merges can build the whole word.
  for (const std::string word : {"the", "once", "upon", "time", "there", "was", "and"}) {
    for (size_t len = 2; len <= word.size(); ++len) {
      const std::string piece = space + word.substr(0, len);
      if (std::find(tokens.begin(), tokens.end(), piece) != tokens.end()) continue;
      tokens.push_back(piece);
      types.push_back(1);
    }
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w->SetString("tokenizer.ggml.model", "llama");
  w->SetStringArray("tokenizer.ggml.tokens", tokens);
  w->SetFloat32Array("tokenizer.ggml.scores", scores);
  w->SetInt32Array("tokenizer.ggml.token_type", types);
  w->SetUint32("tokenizer.ggml.unknown_token_id", 0);
  w->SetUint32("tokenizer.ggml.bos_token_id", 1);
  w->SetUint32("tokenizer.ggml.eos_token_id", 2);
  *n_vocab = static_cast<int64_t>(tokens.size());
}

}  // namespace

StatusOr<std::string> BuildTestModel(const TestModelSpec& s) {
  if (s.arch != "llama" && s.arch != "qwen2") {
    return InvalidArgumentError("arch: want llama or qwen2, got \"" + s.arch + "\"");
  }
  const int64_t ff = s.ff > 0 ? s.ff : (s.dim * 8 / 3 + 31) / 32 * 32;
  if (s.dim <= 0 || s.layers <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.dim % s.heads != 0 ||
      s.heads % s.kv_heads != 0 || s.dim % 32 != 0 || ff % 32 != 0 || (s.dim / s.heads) % 2 != 0) {
    return InvalidArgumentError(
        "shape: need dim and ff multiples of 32, dim % heads == 0 with an even head size, "
        "heads % kv_heads == 0");
  }
  switch (s.type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
      break;
    default:
      return InvalidArgumentError("type: want F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1");
  }
  GgufWriter w;
  const std::string a = s.arch + ".";
  w.SetString("general.architecture", s.arch);
  w.SetString("general.name", "agentry-test-" + s.arch + "-d" + std::to_string(s.dim) + "-l" +
                                  std::to_string(s.layers) + "-" +
                                  GgmlTypeDescribe(static_cast<uint32_t>(s.type)) + "-s" +
                                  std::to_string(s.seed));
  w.SetUint32(a + "context_length", static_cast<uint32_t>(s.ctx));
  w.SetUint32(a + "embedding_length", static_cast<uint32_t>(s.dim));
  w.SetUint32(a + "block_count", static_cast<uint32_t>(s.layers));
  w.SetUint32(a + "feed_forward_length", static_cast<uint32_t>(ff));
  w.SetUint32(a + "attention.head_count", static_cast<uint32_t>(s.heads));
  w.SetUint32(a + "attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  w.SetUint32(a + "rope.dimension_count", static_cast<uint32_t>(s.dim / s.heads));
  w.SetFloat32(a + "rope.freq_base", s.arch == "qwen2" ? 1000000.0f : 10000.0f);
  w.SetFloat32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  int64_t n_vocab = 0;
  if (s.vocab != nullptr) {
    CopyVocab(*s.vocab, &w, &n_vocab);
    if (n_vocab == 0) return InvalidArgumentError(s.vocab->name() + ": no tokenizer.ggml.tokens");
  } else {
    SyntheticVocab(&w, &n_vocab);
  }
  if (!s.chat_template.empty()) w.SetString("tokenizer.chat_template", s.chat_template);

  Rng rng(s.seed * 0x2545F4914F6CDD1Dull + 1);
  const int64_t kv = s.dim / s.heads * s.kv_heads;
  auto matrix = [&](const std::string& name, int64_t in, int64_t out, double amp,
                    GgmlType type) -> Status {
    return w.AddTensor(name, type, {static_cast<uint64_t>(in), static_cast<uint64_t>(out)},
                       Encode(RandomBlocks(&rng, out, in, amp), type));
  };
  auto norm = [&](const std::string& name, int64_t n) -> Status {
    std::vector<float> values(n);
    for (float& v : values) v = static_cast<float>(1.0 + 0.1 * (2 * rng.Uniform() - 1));
    return w.AddTensor(name, GgmlType::kF32, {static_cast<uint64_t>(n)}, EncodeF32(values));
  };
  const double in_amp = 2.0 / std::sqrt(static_cast<double>(s.dim));
  const double ff_amp = 2.0 / std::sqrt(static_cast<double>(ff));
  AGENTRY_RETURN_IF_ERROR(matrix("token_embd.weight", s.dim, n_vocab, 1.0, s.type));
  AGENTRY_RETURN_IF_ERROR(norm("output_norm.weight", s.dim));
  if (!s.tied) AGENTRY_RETURN_IF_ERROR(matrix("output.weight", s.dim, n_vocab, in_amp, s.type));
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    AGENTRY_RETURN_IF_ERROR(norm(b + "attn_norm.weight", s.dim));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "attn_q.weight", s.dim, s.dim, in_amp, s.type));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "attn_k.weight", s.dim, kv, in_amp, s.type));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "attn_v.weight", s.dim, kv, in_amp, s.type));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "attn_output.weight", s.dim, s.dim, in_amp, s.type));
    if (s.arch == "qwen2") {
      for (const auto& [name, n] : {std::pair{"attn_q.bias", s.dim}, std::pair{"attn_k.bias", kv},
                                    std::pair{"attn_v.bias", kv}}) {
        std::vector<float> bias(n);
        for (float& v : bias) v = static_cast<float>(0.2 * (2 * rng.Uniform() - 1));
        AGENTRY_RETURN_IF_ERROR(
            w.AddTensor(b + name, GgmlType::kF32, {static_cast<uint64_t>(n)}, EncodeF32(bias)));
      }
    }
    AGENTRY_RETURN_IF_ERROR(norm(b + "ffn_norm.weight", s.dim));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "ffn_gate.weight", s.dim, ff, in_amp, s.type));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "ffn_up.weight", s.dim, ff, in_amp, s.type));
    AGENTRY_RETURN_IF_ERROR(matrix(b + "ffn_down.weight", ff, s.dim, ff_amp, s.type));
  }
  return w.Serialize();
}

}  // namespace agentry::engine
