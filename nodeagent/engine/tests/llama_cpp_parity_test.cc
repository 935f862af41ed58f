// The engine against llama.cpp itself, run in the same test: the same GGUF files, the same
// token ids, logits compared position by position. llama.cpp is node-llama-cpp 3.22.1's
// prebuilt libllama driven by ../shared/tools/llref (installed by scripts/llref-install,
// which ctest runs first); without it these tests skip and say why.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/quants.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/test_model.h"
#include "nodeagent/engine/tests/llref_runner.h"
#include "nodeagent/engine/tests/shared_models.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::engine {
namespace {

using test_support::Argmax;
using test_support::ExpectSameGreedy;
using test_support::LlamaCppCacheDir;
using test_support::LlrefPath;
using test_support::LoadModelFile;
using test_support::ReadAll;
using test_support::Reference;
using test_support::RunLlref;
using test_support::SharedModel;

// llama.cpp's quantizer: llref-quantize, which scripts/llref-install builds beside llref
// (llama_model_quantize() in the same prebuilt libllama, the function llama-quantize calls),
// or "" when it is not installed.
std::string LlamaQuantizePath() {
  const std::string path = LlamaCppCacheDir() + "/llref-quantize";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

// Writes `in` converted to `type` ("Q8_0", "Q4_K_M", ...) by llama.cpp's quantizer to `out`;
// `pure` puts every matrix in that type (llama-quantize --pure). A failure fails the test.
void QuantizeWithLlamaCpp(const std::string& in, const std::string& out, const std::string& type,
                          bool pure) {
  const std::string cmd = LlamaQuantizePath() + (pure ? " --pure " : " ") + in + " " + out + " " +
                          type + " 2 > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Ours against llama.cpp's logits ([positions][V] each), position by position.
struct LogitComparison {
  int agree = 0;             // positions whose top-1 token is llama.cpp's
  double max_diff = 0;       // max |ours - llama.cpp| over all positions and tokens
  int64_t first_drift = -1;  // first position differing by more than the threshold, or -1
  // Where the top-1 tokens differ, how far below its own top-1 llama.cpp scores ours: the
  // largest such gap. Disagreements are near-ties when this is small beside the logits'
  // spread (it can never exceed 2 * max_diff).
  double max_tie_gap = 0;
  double median_top_gap = 0;  // llama.cpp's top-1 logit minus its second, median over positions
};

// AGENTRY_PARITY_TRACE=1 prints every position differing by more than `drift_threshold`.
LogitComparison CompareLogits(const std::vector<float>& ours, const std::vector<float>& ref,
                              int64_t V, double drift_threshold = 1e-3) {
  LogitComparison c;
  std::vector<float> top_gaps;
  const int64_t positions = static_cast<int64_t>(ours.size()) / V;
  for (int64_t t = 0; t < positions; ++t) {
    const int32_t our_top = Argmax(&ours[t * V], V);
    const int32_t ref_top = Argmax(&ref[t * V], V);
    c.agree += our_top == ref_top;
    c.max_tie_gap =
        std::max(c.max_tie_gap, static_cast<double>(ref[t * V + ref_top] - ref[t * V + our_top]));
    float second = -INFINITY;
    for (int64_t i = 0; i < V; ++i) {
      if (i != ref_top) second = std::max(second, ref[t * V + i]);
    }
    top_gaps.push_back(ref[t * V + ref_top] - second);
    double row = 0;
    for (int64_t i = 0; i < V; ++i) {
      row = std::max(row, static_cast<double>(std::fabs(ours[t * V + i] - ref[t * V + i])));
    }
    if (row > drift_threshold && c.first_drift < 0) c.first_drift = t;
    if (row > drift_threshold && std::getenv("AGENTRY_PARITY_TRACE") != nullptr) {
      std::printf("  position %lld: max |diff| %.3g\n", static_cast<long long>(t), row);
    }
    c.max_diff = std::max(c.max_diff, row);
  }
  if (!top_gaps.empty()) {
    std::nth_element(top_gaps.begin(), top_gaps.begin() + top_gaps.size() / 2, top_gaps.end());
    c.median_top_gap = top_gaps[top_gaps.size() / 2];
  }
  return c;
}

// Our logits at every position of `tokens`, evaluated in one batch.
std::vector<float> OurLogits(const Model& model, const std::vector<int32_t>& tokens,
                             KvCacheType cache = KvCacheType::kF16) {
  ThreadPool pool(2);
  Context ctx(model, static_cast<int64_t>(tokens.size()), &pool, cache);
  std::vector<float> ours;
  EXPECT_TRUE(ctx.Eval(tokens, true, &ours).ok());
  return ours;
}

class ParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (LlrefPath().empty()) {
      GTEST_SKIP() << "llama.cpp reference not installed (scripts/llref-install could not "
                      "install node-llama-cpp@3.22.1 from npm)";
    }
  }
};

// Teacher forcing over a whole story: tokenization, then every position's logits.
struct TeacherCase {
  const char* file;
  float max_abs_diff;    // the bound per format, stated in docs/engine.md
  double min_agreement;  // share of positions whose top-1 token is llama.cpp's
};

class TeacherForcedTest : public ParityTest, public ::testing::WithParamInterface<TeacherCase> {};

void PrintTo(const TeacherCase& c, std::ostream* os) { *os << c.file; }

TEST_P(TeacherForcedTest, TopOneAgreesAndLogitsStayClose) {
  const TeacherCase c = GetParam();
  const std::string model_path = SharedModel(c.file);
  if (model_path.empty()) GTEST_SKIP() << "../shared/models/" << c.file << " not present";
  const std::string story = std::string(AGENTRY_TEST_DATA) + "/story.txt";
  std::unique_ptr<Model> model = LoadModelFile(model_path);
  StatusOr<Tokenizer> tok = Tokenizer::FromGguf(model->file());
  ASSERT_TRUE(tok.ok());
  std::string text = ReadAll(story);
  while (!text.empty() && text.back() == '\n') text.pop_back();  // the shell's $(cat) drops it
  const std::vector<int32_t> tokens = tok->Encode(text, true);
  ASSERT_GE(tokens.size(), 256u);
  ASSERT_LE(tokens.size(), 512u);

  // Tokenization first: llama.cpp tokenizes the same text.
  const Reference by_text = RunLlref(model_path, {}, story);
  EXPECT_EQ(by_text.prompt_tokens, tokens);

  const Reference ref = RunLlref(model_path, tokens);
  const int64_t V = model->params().n_vocab;
  ASSERT_EQ(ref.logits.size(), tokens.size() * V);
  const std::vector<float> ours = OurLogits(*model, tokens);
  ASSERT_EQ(ours.size(), ref.logits.size());
  const LogitComparison cmp = CompareLogits(ours, ref.logits, V);
  const int agree = cmp.agree;
  const double max_diff = cmp.max_diff;
  const double agreement = static_cast<double>(agree) / static_cast<double>(tokens.size());
  RecordProperty("positions", static_cast<int>(tokens.size()));
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  std::printf(
      "%s: %zu positions, top-1 agreement %.4f, max |logit diff| %.3g; where top-1 differs, "
      "llama.cpp scores ours at most %.3g below its own (its median top-1 lead: %.3g)\n",
      c.file, tokens.size(), agreement, max_diff, cmp.max_tie_gap, cmp.median_top_gap);
  EXPECT_GE(agreement, c.min_agreement);
  EXPECT_LE(max_diff, c.max_abs_diff);
  // Where the top-1 tokens differ, llama.cpp itself ranks ours as a near-tie (measured: at
  // most 0.10 below its own top-1, against a median lead of 1.7-1.9).
  EXPECT_LT(cmp.max_tie_gap, cmp.median_top_gap / 4);
}

INSTANTIATE_TEST_SUITE_P(
    Stories260K, TeacherForcedTest,
    // Measured (480 positions), per kernel table (AGENTRY_KERNELS=):
    //   F32:  max diff 0.021-0.030, top-1 100 % on every table;
    //   Q8_0: avx512 0.33, 98.75 % (474); avx2(+vnni) 0.41, 99.17 % (476);
    //         scalar 0.35, 99.17 % (476);
    //   Q4_0: avx512 0.28, 98.96 % (475); avx2 0.34, 98.75 %; scalar 0.34,
    //         98.54 % (473).
    // Quantized activations are discontinuous: a float difference of 1e-6
    // upstream (another summation order) can flip one rounding in a K or V
    // projection, and the flipped cache entry then shifts every later
    // position (AGENTRY_PARITY_TRACE=1 prints where: the first Q8_0 position
    // off by more than 1e-3 is 68 on avx512 and scalar, 119 on avx2). Which
    // table flips first is luck of the order, so the quantized bounds sit a
    // few positions under the worst table. Both are below the engine issue's
    // 99 % target; docs/engine.md.
    ::testing::Values(TeacherCase{"stories260k/stories260K.gguf", 0.05f, 0.99},
                      TeacherCase{"stories260k/stories260K-Q8_0.gguf", 0.5f, 0.985},
                      TeacherCase{"stories260k/stories260K-Q4_0.gguf", 0.5f, 0.98}),
    [](const auto& info) {
      std::string name = info.param.file;
      name = name.substr(name.find('/') + 1);
      name = name.substr(0, name.find('.'));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST_F(ParityTest, Greedy64TokensF32AndQ8_0) {
  for (const char* file : {"stories260k/stories260K.gguf", "stories260k/stories260K-Q8_0.gguf"}) {
    const std::string path = SharedModel(file);
    if (path.empty()) GTEST_SKIP() << "../shared/models/" << file << " not present";
    ExpectSameGreedy(path, {1, 403, 407, 261, 378});  // "<s> Once upon a time"
  }
}

TEST_F(ParityTest, Greedy64TokensF16) {
  // No F16 model ships in ../shared: a random one of our own, over the real Llama 2
  // vocabulary when present. Weights are scaled up so the model is decisive (random models
  // with small weights give near-uniform logits, where any rounding flips the argmax).
  TestModelSpec spec{
      .dim = 128, .layers = 2, .heads = 4, .kv_heads = 2, .type = GgmlType::kF16, .seed = 5};
  StatusOr<std::string> bytes = BuildTestModel(spec);
  ASSERT_TRUE(bytes.ok());
  const std::string path = "/tmp/agentry-parity-f16-" + std::to_string(getpid()) + ".gguf";
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
  ExpectSameGreedy(path, {1, 300, 301, 302});
  unlink(path.c_str());
}

// BF16: llama.cpp rounds activations to BF16 for BF16 weights and sums in F32 (with
// AVX512-BF16's vdpbf16ps where the CPU has it); products of two BF16 values are exact in
// F32, so the engines differ only in the order of additions. BF16 keeps 8 bits, though: an
// activation within ~1e-7 of a rounding boundary can round the other way in one engine (a
// 2^-8 step), and once that happens in a K or V projection the cache entry carries it to
// every later position, as with Q8_0 (docs/engine.md).
TEST_F(ParityTest, Bf16RandomModelTeacherForcedAndGreedy) {
  TestModelSpec spec{
      .dim = 128, .layers = 2, .heads = 4, .kv_heads = 2, .type = GgmlType::kBF16, .seed = 5};
  StatusOr<std::string> bytes = BuildTestModel(spec);
  ASSERT_TRUE(bytes.ok());
  const std::string path = "/tmp/agentry-parity-bf16-" + std::to_string(getpid()) + ".gguf";
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
  std::unique_ptr<Model> model = LoadModelFile(path);
  ASSERT_EQ(model->layers()[0].wq.type, GgmlType::kBF16);
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 95; ++i) tokens.push_back(260 + (i * 11) % 67);
  const Reference ref = RunLlref(path, tokens);
  const int64_t V = model->params().n_vocab;
  ASSERT_EQ(ref.logits.size(), tokens.size() * V);
  const std::vector<float> ours = OurLogits(*model, tokens);
  const LogitComparison a = CompareLogits(ours, ref.logits, V, 1e-5);
  std::printf(
      "BF16 random: %zu positions, top-1 agreement %d, max |logit diff| %.3g, first "
      "position off by > 1e-5: %lld\n",
      tokens.size(), a.agree, a.max_diff, static_cast<long long>(a.first_drift));
  // Measured (docs/engine.md): the first position off by more than 1e-5 is 15 to 36 and
  // the drift after it 0.016 to 0.021, depending on which of our kernel tables and which of
  // llama.cpp's builds (AVX2, or AVX-512 with vdpbf16ps; AGENTRY_LLREF_ARGS) meet: where the
  // first rounding flips is chance. Before it, positions agree within 2e-6 (the same
  // arithmetic). All 96 argmaxes equal in every pairing.
  EXPECT_GE(a.first_drift, 8);
  EXPECT_EQ(a.agree, static_cast<int>(tokens.size()));
  EXPECT_LT(a.max_diff, 0.05);
  ExpectSameGreedy(path, {1, 300, 301, 302});
  unlink(path.c_str());
}

// A real model converted to BF16 by llama.cpp's own llama-quantize, over the whole story.
TEST_F(ParityTest, Bf16StoriesFromLlamaQuantize) {
  if (LlamaQuantizePath().empty()) GTEST_SKIP() << "llref-quantize not installed";
  const std::string f32 = SharedModel("stories260k/stories260K.gguf");
  if (f32.empty()) GTEST_SKIP() << "../shared/models/stories260k not present";
  const std::string path = "/tmp/agentry-parity-stories-bf16-" + std::to_string(getpid()) + ".gguf";
  ASSERT_NO_FATAL_FAILURE(QuantizeWithLlamaCpp(f32, path, "BF16", false));
  std::unique_ptr<Model> model = LoadModelFile(path);
  ASSERT_EQ(model->layers()[0].wq.type, GgmlType::kBF16);
  StatusOr<Tokenizer> tok = Tokenizer::FromGguf(model->file());
  ASSERT_TRUE(tok.ok());
  std::string text = ReadAll(std::string(AGENTRY_TEST_DATA) + "/story.txt");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::vector<int32_t> tokens = tok->Encode(text, true);
  const Reference ref = RunLlref(path, tokens);
  const int64_t V = model->params().n_vocab;
  ASSERT_EQ(ref.logits.size(), tokens.size() * V);
  const std::vector<float> ours = OurLogits(*model, tokens);
  const LogitComparison a = CompareLogits(ours, ref.logits, V, 1e-5);
  std::printf(
      "BF16 stories260K: %zu positions, top-1 agreement %d, max |logit diff| %.3g, "
      "first position off by > 1e-5: %lld\n",
      tokens.size(), a.agree, a.max_diff, static_cast<long long>(a.first_drift));
  // Measured (480 positions): top-1 478 to 480, max difference 0.087 to 0.125, depending
  // on the pairing of builds as above.
  EXPECT_GE(a.agree, static_cast<int>(tokens.size() * 99 / 100));
  EXPECT_LT(a.max_diff, 0.25);
  ExpectSameGreedy(path, {1, 403, 407, 261, 378});  // "<s> Once upon a time"
  unlink(path.c_str());
}

// llref-kv (ours, beside llref: teacher-forced logits from the same prebuilt libllama with
// a chosen KV cache type, which llref cannot set), or "" when it is not installed.
std::string LlrefKvPath() {
  const std::string path = LlamaCppCacheDir() + "/llref-kv";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

// llama.cpp's logits for `tokens` with a Q8_0 K and V cache (flash attention on, which
// llama.cpp needs to quantize V).
std::vector<float> RunLlamaCppQ8_0Cache(const std::string& model,
                                        const std::vector<int32_t>& tokens) {
  const std::string dump = "/tmp/agentry-parity-kv-" + std::to_string(getpid()) + ".f32";
  std::string cmd = LlrefKvPath() + " -m " + model + " -t 2 --cache-type q8_0 --dump " + dump;
  if (const char* extra = std::getenv("AGENTRY_LLREF_ARGS")) cmd += std::string(" ") + extra;
  cmd += " --tokens ";
  for (size_t i = 0; i < tokens.size(); ++i) cmd += (i ? "," : "") + std::to_string(tokens[i]);
  cmd += " > /dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string bytes = ReadAll(dump);
  unlink(dump.c_str());
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
  return logits;
}

// Our Q8_0-cache logits for `tokens` against llama.cpp's with `-ctk q8_0 -ctv q8_0`.
LogitComparison CompareQ8_0Cache(const std::string& path, const std::vector<int32_t>& tokens) {
  std::unique_ptr<Model> model = LoadModelFile(path);
  const std::vector<float> ref = RunLlamaCppQ8_0Cache(path, tokens);
  const int64_t V = model->params().n_vocab;
  EXPECT_EQ(ref.size(), tokens.size() * V);
  const std::vector<float> ours = OurLogits(*model, tokens, KvCacheType::kQ8_0);
  if (ours.size() != ref.size()) return {};
  const LogitComparison a = CompareLogits(ours, ref, V, 1e-5);
  std::printf(
      "Q8_0 cache, %s, head size %lld: %zu positions, top-1 agreement %d, max |logit "
      "diff| %.3g, first position off by > 1e-5: %lld\n",
      path.c_str(), static_cast<long long>(model->params().head_dim), tokens.size(), a.agree,
      a.max_diff, static_cast<long long>(a.first_drift));
  return a;
}

// The Q8_0 KV cache against llama.cpp's `-ctk q8_0 -ctv q8_0`, which runs only with flash
// attention: random models whose heads take each of llama.cpp's Hadamard rotations.
TEST_F(ParityTest, Q8_0CacheTeacherForced) {
  if (LlrefKvPath().empty()) GTEST_SKIP() << "llref-kv not installed";
  // dim: head size dim / 4. Bounds: measured 1.7e-6, 4.8e-4 and 3.6e-3 (docs/engine.md):
  // Q8_0 roundings of keys and values amplify float differences of 1e-7, more often the
  // wider the model.
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 95; ++i) tokens.push_back(260 + (i * 11) % 67);
  for (const auto& [dim, bound] :
       {std::pair{128, 1e-4}, std::pair{256, 5e-3}, std::pair{512, 2e-2}}) {
    StatusOr<std::string> bytes = BuildTestModel(
        {.dim = dim, .layers = 2, .heads = 4, .kv_heads = 2, .type = GgmlType::kF32, .seed = 5});
    ASSERT_TRUE(bytes.ok());
    const std::string path = "/tmp/agentry-parity-kvq8-" + std::to_string(getpid()) + ".gguf";
    ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
    const LogitComparison a = CompareQ8_0Cache(path, tokens);
    EXPECT_EQ(a.agree, static_cast<int>(tokens.size())) << dim;
    EXPECT_LT(a.max_diff, bound) << dim;
    unlink(path.c_str());
  }
}

// The same over 30 layers, on the random SmolLM-shaped model of docs/PERFORMANCE.md when
// the reference cache holds it (bench/engine-vs-llamacpp writes it).
TEST_F(ParityTest, Q8_0CacheTeacherForced30Layers) {
  if (LlrefKvPath().empty()) GTEST_SKIP() << "llref-kv not installed";
  const std::string path =
      LlrefPath().substr(0, LlrefPath().rfind("/llref/")) + "/models/llama-d576-l30-f32.gguf";
  if (access(path.c_str(), R_OK) != 0) GTEST_SKIP() << path << " not present";
  std::unique_ptr<Model> model = LoadModelFile(path);
  StatusOr<Tokenizer> tok = Tokenizer::FromGguf(model->file());
  ASSERT_TRUE(tok.ok());
  // The first 600 bytes of the story: 173 tokens.
  const std::string text = ReadAll(std::string(AGENTRY_TEST_DATA) + "/story.txt").substr(0, 600);
  const LogitComparison a = CompareQ8_0Cache(path, tok->Encode(text, true));
  // Measured: 0.057, 171 of 173. Over 30 layers the Q8_0 roundings amplify float
  // differences of 1e-6; llama.cpp's own batch and token-by-token logits differ by 0.022 over
  // the first 40 of these tokens (docs/engine.md).
  EXPECT_LT(a.max_diff, 0.15);
  EXPECT_GE(a.agree, 168);
}

// Our reference quantizers against llama.cpp's on real weights: stories260K's F32 matrices
// converted by llama.cpp (--pure) to each type must be, byte for byte, what our
// quantize_row_*_ref / convert_row_*_ref write from the same floats. This is what lets
// make-test-model's quantized files stand in for llama-quantize output.
template <typename Out, void (*quantize)(const float*, Out*, int64_t)>
void Writes(const float* x, char* out, int64_t n) {
  quantize(x, reinterpret_cast<Out*>(out), n);
}

TEST_F(ParityTest, ReferenceQuantizersWriteLlamaCppsBytes) {
  if (LlamaQuantizePath().empty()) GTEST_SKIP() << "llref-quantize not installed";
  const std::string f32_path = SharedModel("stories260k/stories260K.gguf");
  if (f32_path.empty()) GTEST_SKIP() << "../shared/models/stories260k not present";
  StatusOr<std::unique_ptr<GgufFile>> f32 = GgufFile::Open(f32_path);
  ASSERT_TRUE(f32.ok()) << f32.status().message();
  // Each format's reference quantizer, through one signature.
  using QuantizeFn = void (*)(const float*, char*, int64_t);
  const std::pair<GgmlType, QuantizeFn> formats[] = {
      {GgmlType::kQ8_0, Writes<kernels::block_q8_0, &kernels::quantize_row_q8_0_ref>},
      {GgmlType::kQ4_0, Writes<kernels::block_q4_0, &kernels::quantize_row_q4_0_ref>},
      {GgmlType::kQ4_1, Writes<kernels::block_q4_1, &kernels::quantize_row_q4_1_ref>},
      {GgmlType::kQ5_0, Writes<kernels::block_q5_0, &kernels::quantize_row_q5_0_ref>},
      {GgmlType::kQ5_1, Writes<kernels::block_q5_1, &kernels::quantize_row_q5_1_ref>},
      {GgmlType::kF16, Writes<uint16_t, &kernels::convert_row_fp32_to_fp16_ref>},
      {GgmlType::kBF16, Writes<uint16_t, &kernels::convert_row_fp32_to_bf16_ref>}};
  for (const auto& [type, quantize] : formats) {
    const std::string name = GgmlTypeDescribe(static_cast<uint32_t>(type));
    const std::string path = "/tmp/agentry-parity-quant-" + std::to_string(getpid()) + ".gguf";
    ASSERT_NO_FATAL_FAILURE(QuantizeWithLlamaCpp(f32_path, path, name, true));
    StatusOr<std::unique_ptr<GgufFile>> theirs = GgufFile::Open(path);
    ASSERT_TRUE(theirs.ok()) << theirs.status().message();
    int compared = 0;
    for (const GgufTensorInfo& t : (*theirs)->tensors()) {
      if (t.type != type) continue;  // 1-D tensors stay F32
      const GgufTensorInfo* source = (*f32)->FindTensor(t.name);
      ASSERT_NE(source, nullptr) << t.name;
      ASSERT_EQ(source->type, GgmlType::kF32) << t.name;
      ASSERT_EQ(source->n_elements, t.n_elements) << t.name;
      const auto n = static_cast<int64_t>(t.n_elements);
      std::vector<float> x(t.n_elements);
      std::memcpy(x.data(), (*f32)->TensorData(*source), t.n_elements * sizeof(float));
      std::string ours(t.n_bytes, '\0');
      quantize(x.data(), ours.data(), n);
      EXPECT_EQ(std::memcmp(ours.data(), (*theirs)->TensorData(t), t.n_bytes), 0)
          << name << " " << t.name << ": our bytes differ from llama.cpp's";
      ++compared;
    }
    std::printf("%s: %d matrices byte-identical to llama.cpp's quantizer\n", name.c_str(),
                compared);
    EXPECT_GE(compared, 7) << name;  // token_embd and the six matrices of each layer at least
    unlink(path.c_str());
  }
}

// A random F32 model written to `path`, to be quantized by llama.cpp.
void WriteF32Model(const TestModelSpec& spec, const std::string& path) {
  StatusOr<std::string> bytes = BuildTestModel(spec);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
}

// `f32` converted by llama.cpp's quantizer to `type` (`pure`: every matrix in it), then
// teacher-forced on `tokens` through both engines. `wq` receives the type llama.cpp chose for
// blk.0.attn_q.weight.
LogitComparison CompareOnLlamaQuantized(const std::string& f32, const std::string& type, bool pure,
                                        const std::vector<int32_t>& tokens, GgmlType* wq) {
  const std::string out = f32 + "-" + type + ".gguf";
  QuantizeWithLlamaCpp(f32, out, type, pure);
  std::unique_ptr<Model> model = LoadModelFile(out);
  *wq = model->layers()[0].wq.type;
  const Reference ref = RunLlref(out, tokens);
  unlink(out.c_str());
  const int64_t V = model->params().n_vocab;
  const std::vector<float> ours = OurLogits(*model, tokens);
  if (ours.size() != ref.logits.size()) {
    ADD_FAILURE() << type << ": " << ours.size() << " logits against llama.cpp's "
                  << ref.logits.size();
    return {};
  }
  const LogitComparison cmp = CompareLogits(ours, ref.logits, V);
  std::printf(
      "%s: %zu positions, top-1 agreement %d, max |logit diff| %.3g, first position off by > "
      "1e-3: %lld\n",
      type.c_str(), tokens.size(), cmp.agree, cmp.max_diff,
      static_cast<long long>(cmp.first_drift));
  return cmp;
}

// Q4_1, Q5_0 and Q5_1: a random model whose rows (64 and 192 wide) are not multiples of 256,
// so llama.cpp's quantizer writes Q4_K_M as Q5_0 (and Q8_0 for the Q6_K parts) and Q5_K_M as
// Q5_1 (and Q8_0), as it does for every dim-576 matrix of SmolLM-135M; and each format alone.
TEST_F(ParityTest, LegacyQuantsFromLlamaQuantize) {
  if (LlamaQuantizePath().empty()) GTEST_SKIP() << "llref-quantize not installed";
  const std::string f32 = "/tmp/agentry-parity-legacy-" + std::to_string(getpid()) + ".gguf";
  ASSERT_NO_FATAL_FAILURE(WriteF32Model(
      {.dim = 64, .layers = 2, .heads = 4, .kv_heads = 2, .ff = 192, .seed = 3}, f32));
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 63; ++i) tokens.push_back(260 + (i * 7) % 60);
  const struct {
    const char* type;
    bool pure;
    GgmlType wq;  // the type attn_q.weight must come out in
  } cases[] = {{"Q4_K_M", false, GgmlType::kQ5_0},
               {"Q5_K_M", false, GgmlType::kQ5_1},
               {"Q4_1", true, GgmlType::kQ4_1},
               {"Q5_0", true, GgmlType::kQ5_0},
               {"Q5_1", true, GgmlType::kQ5_1}};
  for (const auto& c : cases) {
    GgmlType wq = GgmlType::kF32;
    const LogitComparison cmp = CompareOnLlamaQuantized(f32, c.type, c.pure, tokens, &wq);
    EXPECT_EQ(wq, c.wq) << c.type;
    // Measured (docs/engine.md): within 0.092 on every table, all 64 argmaxes equal; on the
    // avx2 table, whose dots sum as llama.cpp's, Q4_1 and Q5_1 are bit-identical and Q5_0
    // within 5e-7.
    EXPECT_GE(cmp.agree, static_cast<int>(tokens.size()) - 2) << c.type;
    EXPECT_LT(cmp.max_diff, 0.15) << c.type;
  }
  unlink(f32.c_str());
}

// K-quants: a random model quantized by llama.cpp's own quantizer.
TEST_F(ParityTest, KQuantsFromLlamaQuantize) {
  if (LlamaQuantizePath().empty()) GTEST_SKIP() << "llref-quantize not installed";
  const std::string f32 = "/tmp/agentry-parity-k-" + std::to_string(getpid()) + ".gguf";
  ASSERT_NO_FATAL_FAILURE(WriteF32Model(
      {.dim = 256, .layers = 2, .heads = 4, .kv_heads = 2, .ff = 768, .seed = 3}, f32));
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 47; ++i) tokens.push_back(260 + (i * 7) % 60);
  for (const char* type : {"Q4_K_M", "Q5_K_M", "Q6_K"}) {
    GgmlType wq = GgmlType::kF32;
    const LogitComparison cmp = CompareOnLlamaQuantized(f32, type, false, tokens, &wq);
    // Measured with the SIMD kernels (every table gives the same bits): Q6_K agrees within
    // 2e-6 at all 48 positions, our Q8_K quantizer and Q5_K/Q6_K dots rounding exactly as
    // llama.cpp's x86 vec_dot. Q5_K_M is bit-identical at positions 0-2, then jumps by 0.07
    // at position 3 (0.1 at most, one argmax in 48): most likely one activation rounding
    // flipping, as Q8_0's do (docs/engine.md). Q4_K_M drifts from position 14 (0.09 at most):
    // llama.cpp multiplies Q4_K through weights repacked 8 rows at a time, with its own GEMM and
    // quantizer.
    EXPECT_GE(cmp.agree, static_cast<int>(tokens.size()) - 2) << type;
    EXPECT_LT(cmp.max_diff, 0.15) << type;
  }
  unlink(f32.c_str());
}

// The project's multilingual, code- and emoji-heavy text (tests/data/multilingual.txt)
// through the real tokenizers that llama.cpp's source ships, each in a small random model of
// the family's architecture: llama.cpp must tokenize it to the same ids, and the forward
// pass over the full-size vocabulary must agree with it position by position.
struct VocabCase {
  const char* vocab;  // llama.cpp's models/ggml-vocab-<vocab>.gguf
  const char* arch;
  GgmlType type;
  double min_agreement;  // share of positions whose top-1 token is llama.cpp's
};

class RealVocabularyTest : public ParityTest, public ::testing::WithParamInterface<VocabCase> {};

void PrintTo(const VocabCase& c, std::ostream* os) {
  *os << c.vocab << " " << GgmlTypeDescribe(static_cast<uint32_t>(c.type));
}

TEST_P(RealVocabularyTest, MultilingualTextTokenizesAndEvaluatesLikeLlamaCpp) {
  const VocabCase c = GetParam();
  const std::string vocab_path =
      test_support::LlamaCppFile(std::string("models/ggml-vocab-") + c.vocab + ".gguf");
  if (vocab_path.empty()) GTEST_SKIP() << "llama.cpp's ggml-vocab-" << c.vocab << " not installed";
  // Quantized variants are made from the F32 model by llama.cpp's own quantizer (--pure:
  // every matrix in the type), so both engines read bytes llama.cpp wrote.
  const bool quantized = c.type != GgmlType::kF32;
  if (quantized && LlamaQuantizePath().empty()) GTEST_SKIP() << "llref-quantize not installed";
  StatusOr<std::unique_ptr<GgufFile>> vocab = GgufFile::Open(vocab_path);
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  StatusOr<std::string> bytes = BuildTestModel({.arch = c.arch,
                                                .dim = 64,
                                                .layers = 2,
                                                .heads = 4,
                                                .kv_heads = 2,
                                                .ctx = 1024,
                                                .type = GgmlType::kF32,
                                                .seed = 11,
                                                .vocab = vocab->get()});
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  const std::string path =
      "/tmp/agentry-parity-" + std::string(c.vocab) + "-" + std::to_string(getpid()) + ".gguf";
  if (quantized) {
    ASSERT_TRUE(WriteFileAtomically(path + ".f32", *bytes).ok());
    ASSERT_NO_FATAL_FAILURE(QuantizeWithLlamaCpp(
        path + ".f32", path, GgmlTypeDescribe(static_cast<uint32_t>(c.type)), true));
    unlink((path + ".f32").c_str());
  } else {
    ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
  }
  std::unique_ptr<Model> model = LoadModelFile(path);
  ASSERT_EQ(model->layers()[0].wq.type, c.type);
  StatusOr<Tokenizer> tok = Tokenizer::FromGguf(model->file());
  ASSERT_TRUE(tok.ok()) << tok.status().message();

  const std::string text_file = std::string(AGENTRY_TEST_DATA) + "/multilingual.txt";
  const std::string text = ReadAll(text_file);
  ASSERT_NE(text.back(), '\n');  // the shell's $(cat) would drop it
  StatusOr<std::vector<int32_t>> tokens = tok->EncodeUtf8(text, tok->add_bos_default());
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  const Reference by_text = RunLlref(path, {}, text_file);
  EXPECT_EQ(by_text.prompt_tokens, *tokens);
  EXPECT_EQ(tok->Decode(*tokens), text);

  const Reference ref = RunLlref(path, *tokens);
  const int64_t V = model->params().n_vocab;
  const std::vector<float> ours = OurLogits(*model, *tokens);
  ASSERT_EQ(ours.size(), ref.logits.size());
  const LogitComparison cmp = CompareLogits(ours, ref.logits, V);
  std::printf(
      "%s %s: %zu tokens, top-1 agreement %d, max |logit diff| %.3g; where top-1 differs, "
      "llama.cpp scores ours at most %.3g below its own (its median top-1 lead: %.3g)\n",
      c.vocab, GgmlTypeDescribe(static_cast<uint32_t>(c.type)).c_str(), tokens->size(), cmp.agree,
      cmp.max_diff, cmp.max_tie_gap, cmp.median_top_gap);
  // F32: measured 99.8-100 % (one near-tie, 1.4e-4 apart) and at most 0.0025. Quantized
  // activations round discontinuously: once a rounding in a K or V projection flips on a
  // float difference of 1e-7, every later position moves by ~0.05, and these random models
  // have close logits (llama.cpp's own top-1 leads its second by 0.25 at the median), so
  // near-ties flip. Measured over the avx512 / avx2 / scalar tables: llama-spm Q4_0 98.8-100
  // %, llama-bpe Q8_0 96.2-96.9 % (llama.cpp's AVX2 build against its AVX-512 build: 99.8 %),
  // qwen2 Q4_0 99.4-100 %; max difference at most 0.15 (docs/engine.md).
  EXPECT_GE(cmp.agree, static_cast<int>(static_cast<double>(tokens->size()) * c.min_agreement));
  if (quantized) {
    // Where the top-1 tokens differ, llama.cpp itself must rank ours as a near-tie: well
    // under its typical lead (measured: at most 0.052 against a median lead of 0.25).
    EXPECT_LT(cmp.max_tie_gap, cmp.median_top_gap / 2);
  }
  EXPECT_LT(cmp.max_diff, quantized ? 0.25 : 0.05);
  unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Families, RealVocabularyTest,
                         ::testing::Values(VocabCase{"llama-spm", "llama", GgmlType::kF32, 0.99},
                                           VocabCase{"llama-bpe", "llama", GgmlType::kF32, 0.99},
                                           VocabCase{"qwen2", "qwen2", GgmlType::kF32, 0.99},
                                           VocabCase{"llama-spm", "llama", GgmlType::kQ4_0, 0.98},
                                           VocabCase{"llama-bpe", "llama", GgmlType::kQ8_0, 0.95},
                                           VocabCase{"qwen2", "qwen2", GgmlType::kQ4_0, 0.98}),
                         [](const auto& info) {
                           std::string name =
                               std::string(info.param.vocab) + "_" +
                               GgmlTypeDescribe(static_cast<uint32_t>(info.param.type));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace agentry::engine
