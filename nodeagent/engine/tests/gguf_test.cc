#include "nodeagent/engine/gguf.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/tests/shared_models.h"

namespace agentry::engine {
namespace {

std::string Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A small but complete model-like file.
GgufWriter SampleWriter() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("llama.block_count", 2);
  w.SetUint64("llama.context_length", 4096);
  w.SetInt32("tokenizer.ggml.bos_token_id", 1);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81Hello"});
  w.SetFloat32Array("tokenizer.ggml.scores", {0.f, -1.f, -2.f, -3.5f});
  w.SetInt32Array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  std::vector<float> embd(size_t{8} * 4);
  for (size_t i = 0; i < embd.size(); ++i) embd[i] = static_cast<float>(i) * 0.5f;
  EXPECT_TRUE(w.AddTensor("token_embd.weight", GgmlType::kF32, {8, 4}, Bytes(embd)).ok());
  EXPECT_TRUE(
      w.AddTensor("output_norm.weight", GgmlType::kF32, {8}, Bytes(std::vector<float>(8, 1.f)))
          .ok());
  // One Q8_0 block: 32 weights in 34 bytes.
  EXPECT_TRUE(
      w.AddTensor("blk.0.attn_q.weight", GgmlType::kQ8_0, {32, 1}, std::string(34, '\x01')).ok());
  return w;
}

TEST(GgufTest, RoundTripsMetadataAndTensors) {
  const std::string bytes = SampleWriter().Serialize();
  StatusOr<std::unique_ptr<GgufFile>> opened = GgufFile::FromBuffer(bytes, "sample.gguf");
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  const GgufFile& f = **opened;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint("llama.block_count"), 2u);
  EXPECT_EQ(*f.GetUint("llama.context_length"), 4096u);
  EXPECT_EQ(*f.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_FLOAT_EQ(static_cast<float>(*f.GetFloat("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_TRUE(*f.GetBool("tokenizer.ggml.add_bos_token"));
  const auto* tokens = *f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens->size(), 4u);
  EXPECT_EQ((*tokens)[3], "\xE2\x96\x81Hello");
  EXPECT_EQ(*f.GetFloatArray("tokenizer.ggml.scores"),
            (std::vector<float>{0.f, -1.f, -2.f, -3.5f}));
  EXPECT_EQ(*f.GetIntArray("tokenizer.ggml.token_type"), (std::vector<int64_t>{2, 3, 3, 1}));

  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->n_dims, 2u);
  EXPECT_EQ(embd->dims[0], 8u);
  EXPECT_EQ(embd->dims[1], 4u);
  EXPECT_EQ(embd->n_elements, 32u);
  EXPECT_EQ(embd->n_bytes, 128u);
  float v = 0;
  std::memcpy(&v, f.TensorData(*embd) + 5 * sizeof(float), sizeof(float));
  EXPECT_FLOAT_EQ(v, 2.5f);
  const GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ8_0);
  EXPECT_EQ(q->n_bytes, 34u);
  EXPECT_EQ((f.TensorData(*q) - f.TensorData(*embd)) % 32, 0);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
}

TEST(GgufTest, TypedGettersNameKeyAndTypes) {
  const std::string bytes = SampleWriter().Serialize();
  auto f = std::move(GgufFile::FromBuffer(bytes, "x").value());
  EXPECT_EQ(f->GetString("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f->GetString("llama.block_count").status().message(),
            "llama.block_count: expected string, found uint32");
  EXPECT_EQ(f->GetUint("general.architecture").status().message(),
            "general.architecture: expected an unsigned integer, found string");
  EXPECT_EQ(f->GetFloatArray("tokenizer.ggml.tokens").status().message(),
            "tokenizer.ggml.tokens: expected array of float32, found array of string");
}

TEST(GgufTest, EveryTruncationIsAnErrorWithAnOffset) {
  const std::string bytes = SampleWriter().Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    // A copy of exactly `len` bytes, so ASan sees any read past its end.
    std::unique_ptr<char[]> copy(new char[len == 0 ? 1 : len]);
    std::memcpy(copy.get(), bytes.data(), len);
    StatusOr<std::unique_ptr<GgufFile>> f =
        GgufFile::FromBuffer(std::string_view(copy.get(), len), "t.gguf");
    // The padding after the last tensor is not needed, so a cut inside it may still parse.
    if (f.ok()) {
      const GgufTensorInfo& last = (*f)->tensors().back();
      EXPECT_GE(len, (*f)->data_offset() + last.offset + last.n_bytes) << len;
      continue;
    }
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << len;
    EXPECT_NE(f.status().message().find("t.gguf: offset "), std::string::npos)
        << len << ": " << f.status().message();
  }
}

// Builds raw GGUF bytes field by field, for files the writer would never produce.
class Raw {
 public:
  Raw& Magic() {
    s_.append("GGUF");
    return *this;
  }
  template <typename T>
  Raw& Put(T v) {
    s_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Raw& Str(std::string_view text) {
    Put<uint64_t>(text.size());
    s_.append(text);
    return *this;
  }
  Raw& Header(uint64_t n_tensors, uint64_t n_kv) {
    return Magic().Put<uint32_t>(3).Put<uint64_t>(n_tensors).Put<uint64_t>(n_kv);
  }
  Raw& Pad(size_t align = 32) {
    s_.resize((s_.size() + align - 1) / align * align, '\0');
    return *this;
  }
  Raw& Zeros(size_t n) {
    s_.append(n, '\0');
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

std::string ErrorOf(const std::string& bytes) {
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(bytes, "bad.gguf");
  if (f.ok()) return "";
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  return f.status().message();
}

// A tensor info: name, dims, type, offset.
Raw& Tensor(Raw& r, std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
            uint64_t offset) {
  r.Str(name).Put<uint32_t>(static_cast<uint32_t>(dims.size()));
  for (uint64_t d : dims) r.Put<uint64_t>(d);
  return r.Put<uint32_t>(type).Put<uint64_t>(offset);
}

TEST(GgufHostileTest, HeaderErrors) {
  EXPECT_EQ(ErrorOf("GGUF"),
            "bad.gguf: offset 4: version: needs 4 bytes but the file ends after 0 (truncated?)");
  EXPECT_NE(ErrorOf(Raw().Put<uint32_t>(0x12345678).Zeros(20).str()).find("not a GGUF file"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Raw().Magic().Put<uint32_t>(1).Zeros(16).str())
                .find("offset 4: version: unsupported GGUF version 1"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Raw().Header(0, uint64_t{1} << 60).str()).find("metadata_kv_count"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Raw().Header(uint64_t{1} << 40, 0).str()).find("tensor_count"),
            std::string::npos);
}

TEST(GgufHostileTest, MetadataErrors) {
  EXPECT_NE(ErrorOf(Raw().Header(0, 1).Put<uint64_t>(uint64_t{1} << 62).Zeros(32).str())
                .find("metadata[0].key: length"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf(Raw().Header(0, 1).Str("k").Put<uint32_t>(77).str()).find("k: unknown value type 77"),
      std::string::npos);
  EXPECT_NE(ErrorOf(Raw().Header(0, 1).Str("k").Put<uint32_t>(8).Put<uint64_t>(1000).str())
                .find("k: needs 1000 bytes"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Raw().Header(0, 1).Str("k").Put<uint32_t>(7).Put<uint8_t>(2).str())
                .find("bool must be 0 or 1"),
            std::string::npos);
  // An array claiming 2^40 uint32 elements in a tiny file is refused before allocation.
  EXPECT_NE(ErrorOf(Raw()
                        .Header(0, 1)
                        .Str("a")
                        .Put<uint32_t>(9)
                        .Put<uint32_t>(4)
                        .Put<uint64_t>(uint64_t{1} << 40)
                        .str())
                .find("does not fit"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Raw()
                        .Header(0, 1)
                        .Str("a")
                        .Put<uint32_t>(9)
                        .Put<uint32_t>(8)
                        .Put<uint64_t>(uint64_t{1} << 40)
                        .str())
                .find("does not fit"),
            std::string::npos);
  // Nested arrays deeper than 8.
  Raw deep;
  deep.Header(0, 1).Str("a").Put<uint32_t>(9);
  for (int i = 0; i < 10; ++i) deep.Put<uint32_t>(9).Put<uint64_t>(1);
  deep.Put<uint32_t>(4).Put<uint64_t>(0).Zeros(64);
  EXPECT_NE(ErrorOf(deep.str()).find("nested deeper than 8"), std::string::npos);
  // Duplicate keys.
  EXPECT_NE(ErrorOf(Raw()
                        .Header(0, 2)
                        .Str("k")
                        .Put<uint32_t>(4)
                        .Put<uint32_t>(1)
                        .Str("k")
                        .Put<uint32_t>(4)
                        .Put<uint32_t>(2)
                        .str())
                .find("k: key appears more than once"),
            std::string::npos);
  // Alignment must be a uint32 power of two.
  EXPECT_NE(
      ErrorOf(Raw().Header(0, 1).Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(24).str())
          .find("general.alignment: must be a uint32 power of two"),
      std::string::npos);
}

TEST(GgufHostileTest, TensorInfoErrors) {
  auto with_tensor = [](const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset,
                        size_t data_bytes) {
    Raw r;
    r.Header(1, 0);
    Tensor(r, "w", dims, type, offset).Pad().Zeros(data_bytes);
    return ErrorOf(r.str());
  };
  EXPECT_EQ(with_tensor({8}, 0, 0, 32), "");  // the well-formed baseline
  EXPECT_NE(with_tensor({}, 0, 0, 32).find("w).n_dims: must be 1 to 4, got 0"), std::string::npos);
  EXPECT_NE(with_tensor({1, 1, 1, 1, 1}, 0, 0, 32).find("must be 1 to 4, got 5"),
            std::string::npos);
  EXPECT_NE(with_tensor({8, 0}, 0, 0, 32).find("dims[1]: must be 1 to 2^40, got 0"),
            std::string::npos);
  EXPECT_NE(
      with_tensor({uint64_t{1} << 30, uint64_t{1} << 30}, 0, 0, 32).find("element count overflows"),
      std::string::npos);
  EXPECT_NE(with_tensor({8}, 16, 0, 32).find("unsupported tensor type IQ2_XXS"), std::string::npos);
  EXPECT_NE(with_tensor({8}, 99, 0, 32).find("unsupported tensor type type 99"), std::string::npos);
  EXPECT_NE(with_tensor({48}, 8, 0, 64).find("48 is not a multiple of the Q8_0 block size 32"),
            std::string::npos);
  EXPECT_NE(with_tensor({8}, 0, 16, 64).find("16 is not a multiple of the alignment 32"),
            std::string::npos);
  EXPECT_NE(with_tensor({8}, 0, 32, 32).find("lies outside the data section"), std::string::npos);
  EXPECT_NE(with_tensor({16}, 0, 0, 32).find("lies outside the data section"), std::string::npos);
  Raw dup;
  dup.Header(2, 0);
  Tensor(dup, "w", {8}, 0, 0);
  Tensor(dup, "w", {8}, 0, 32).Pad().Zeros(64);
  EXPECT_NE(ErrorOf(dup.str()).find("tensor name appears more than once"), std::string::npos);
}

TEST(GgufFileTest, OpenErrors) {
  EXPECT_EQ(GgufFile::Open("/nonexistent/model.gguf").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(GgufFile::Open("/tmp").status().code(), StatusCode::kInvalidArgument);
  char path[] = "/tmp/agentry-gguf-empty-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  StatusOr<std::unique_ptr<GgufFile>> empty = GgufFile::Open(path);
  unlink(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("offset 0: magic: needs 4 bytes"), std::string::npos);
}

TEST(GgufFileTest, WriteFileThenOpenMapsTheSameBytes) {
  const std::string path = "/tmp/agentry-gguf-roundtrip-" + std::to_string(getpid()) + ".gguf";
  ASSERT_TRUE(SampleWriter().WriteFile(path).ok());
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->file_size(), SampleWriter().Serialize().size());
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  unlink(path.c_str());
}

TEST(GgufWriterTest, RefusesInconsistentTensors) {
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("a", GgmlType::kF32, {8}, std::string(31, '\0')).ok());
  EXPECT_FALSE(w.AddTensor("a", GgmlType::kQ4_0, {16}, std::string(9, '\0')).ok());
  EXPECT_FALSE(w.AddTensor("a", GgmlType::kF32, {}, "").ok());
  EXPECT_FALSE(w.AddTensor("a", static_cast<GgmlType>(16), {8}, std::string(8, '\0')).ok());
}

TEST(GgmlTypeTest, Layouts) {
  EXPECT_EQ(GgmlTypeTraitsOf(0).block_bytes, 4u);
  EXPECT_EQ(GgmlTypeTraitsOf(8).block_bytes, 34u);    // Q8_0: f16 scale + 32 int8
  EXPECT_EQ(GgmlTypeTraitsOf(2).block_bytes, 18u);    // Q4_0: f16 scale + 16 nibble pairs
  EXPECT_EQ(GgmlTypeTraitsOf(12).block_bytes, 144u);  // Q4_K
  EXPECT_EQ(GgmlTypeTraitsOf(13).block_bytes, 176u);  // Q5_K
  EXPECT_EQ(GgmlTypeTraitsOf(14).block_bytes, 210u);  // Q6_K
  EXPECT_EQ(GgmlTypeTraitsOf(14).block_size, 256u);
  EXPECT_EQ(GgmlTypeTraitsOf(30).block_bytes, 2u);  // BF16
  EXPECT_EQ(GgmlTypeTraitsOf(16).name, nullptr);
  EXPECT_EQ(GgmlTypeDescribe(16), "IQ2_XXS");
}

using test_support::SharedModel;

TEST(GgufRealModelTest, Stories260K) {
  const std::string path = SharedModel("stories260k/stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/stories260k/stories260K.gguf not present";
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->GetUint("llama.embedding_length"), 64u);
  EXPECT_EQ(*(*f)->GetUint("llama.block_count"), 5u);
  EXPECT_EQ((*(*f)->GetStringArray("tokenizer.ggml.tokens"))->size(), 512u);
  const GgufTensorInfo* embd = (*f)->FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dims[0], 64u);
  EXPECT_EQ(embd->dims[1], 512u);
  EXPECT_EQ(embd->type, GgmlType::kF32);
  // Every weight is a finite float: the mapping and offsets are right.
  const auto* data = reinterpret_cast<const float*>((*f)->TensorData(*embd));
  for (uint64_t i = 0; i < embd->n_elements; ++i) ASSERT_TRUE(std::isfinite(data[i])) << i;
}

TEST(GgufRealModelTest, Stories260KQuantizedVariants) {
  for (const auto& [file, type] :
       {std::pair{"stories260k/stories260K-Q8_0.gguf", GgmlType::kQ8_0},
        std::pair{"stories260k/stories260K-Q4_0.gguf", GgmlType::kQ4_0}}) {
    const std::string path = SharedModel(file);
    if (path.empty()) GTEST_SKIP() << "../shared/models/" << file << " not present";
    StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    int quantized = 0;
    for (const GgufTensorInfo& t : (*f)->tensors()) quantized += t.type == type;
    EXPECT_GT(quantized, 0) << file;
  }
}

TEST(GgufRealModelTest, Llama2TinyRandom) {
  const std::string path = SharedModel("llama2-tiny-random/llama-2-tiny-random.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/llama2-tiny-random not present";
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->tensors().size(), 12u);
  EXPECT_EQ((*f)->metadata().size(), 18u);
  EXPECT_EQ((*f)->data_offset(), 724416u);
  EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.model"), "llama");
  const auto* tokens = *(*f)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens->size(), 32000u);
  EXPECT_EQ((*tokens)[15043], "\xE2\x96\x81Hello");  // "Hello" in the .out test vectors
  EXPECT_EQ((*(*f)->GetFloatArray("tokenizer.ggml.scores")).size(), 32000u);
  const GgufTensorInfo* down = (*f)->FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->type, GgmlType::kF16);
  EXPECT_EQ(down->dims[0], 32u);
  EXPECT_EQ(down->dims[1], 8u);
}

}  // namespace
}  // namespace agentry::engine
