// The training run end to end on a tiny model: resumable to the same bits, bad options and a
// diverging loss stop with clear messages and keep the last good checkpoint, the exported
// GGUF files load in the engine with the trained tokenizer.
#include "train/trainer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "train/batcher.h"
#include "train/checkpoint.h"
#include "train/corpus/triage_corpus.h"
#include "train/loss_plot.h"
#include <gtest/gtest.h>

#include "nodeagent/engine/chat_template.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/model.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::train {
namespace {

std::string TempDir(const std::string& name) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("agentry_train_" + name + "_" + std::to_string(::getpid())))
                        .string();
  std::filesystem::remove_all(dir);
  return dir;
}

TrainOptions TinyRun(const std::string& dir) {
  TrainOptions o;
  o.out_dir = dir;
  o.model.dim = 32;
  o.model.layers = 1;
  o.model.heads = 2;
  o.model.kv_heads = 1;
  o.model.ff = 64;
  o.model.ctx = 1024;
  o.vocab_size = 320;
  o.tokenizer_conversations = 100;
  o.corpus_size = 1000;
  o.batch_tokens = 1024;
  o.steps = 4;
  o.threads = 2;
  o.checkpoint_every = 2;
  o.eval_every = 2;
  o.eval_tokens = 1024;
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TrainerTest, ResumedRunEndsWithTheSameBitsAsAnUninterruptedOne) {
  const std::string straight = TempDir("straight");
  const std::string resumed = TempDir("resumed");
  StatusOr<TrainResult> a = Train(TinyRun(straight), nullptr);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->steps, 4);

  // Stop after two steps (as SIGINT would), then run the same command again.
  std::atomic<bool> stop{false};
  TrainOptions first = TinyRun(resumed);
  first.stop = &stop;
  StatusOr<TrainResult> part = Train(first, [&](const TrainProgress& p) {
    if (p.step == 2) stop.store(true);
  });
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  EXPECT_TRUE(part->stopped);
  EXPECT_EQ(part->steps, 2);
  bool saw_resume = false;
  StatusOr<TrainResult> b = Train(TinyRun(resumed), [&](const TrainProgress& p) {
    saw_resume = p.resumed;
    EXPECT_GT(p.step, 2);
  });
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(saw_resume);
  EXPECT_EQ(ReadFile(a->f32_path), ReadFile(b->f32_path));
  EXPECT_EQ(ReadFile(a->q8_0_path), ReadFile(b->q8_0_path));
  EXPECT_TRUE(std::filesystem::exists(straight + "/loss.svg"));
  EXPECT_NE(ReadFile(straight + "/loss.csv").find("step,loss"), std::string::npos);
  std::filesystem::remove_all(straight);
  std::filesystem::remove_all(resumed);
}

TEST(TrainerTest, ExportedModelsLoadInTheEngineWithTheTrainedTokenizer) {
  const std::string dir = TempDir("export");
  StatusOr<TrainResult> r = Train(TinyRun(dir), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const std::string& path : {r->f32_path, r->q8_0_path}) {
    StatusOr<std::unique_ptr<engine::GgufFile>> file = engine::GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    StatusOr<engine::Tokenizer> tok = engine::Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    StatusOr<std::string_view> tmpl = (*file)->GetString("tokenizer.chat_template");
    ASSERT_TRUE(tmpl.ok());
    StatusOr<engine::ChatFormat> format = engine::DetectChatFormat(*tmpl);
    ASSERT_TRUE(format.ok()) << format.status().ToString();
    EXPECT_EQ(*format, engine::ChatFormat::kChatMl);
    StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(std::move(*file));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ((*model)->params().n_vocab, r->vocab);
    engine::ThreadPool pool(1);
    engine::Context ctx(**model, 64, &pool);
    std::vector<float> logits;
    ASSERT_TRUE(ctx.Eval(tok->Encode("<|im_start|>user\nhi", false, true), false, &logits).ok());
    EXPECT_EQ(static_cast<int64_t>(logits.size()), r->vocab);
  }
  std::filesystem::remove_all(dir);
}

TEST(TrainerTest, OptionsThatCannotTrainAreRefusedByName) {
  TrainOptions o = TinyRun(TempDir("bad"));
  o.corpus_size = 0;
  EXPECT_NE(Train(o, nullptr).status().message().find("corpus is empty"), std::string::npos);
  o = TinyRun(TempDir("bad"));
  o.vocab_size = 100;  // fewer than the 256 byte tokens
  StatusOr<TrainResult> r = Train(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocab"), std::string::npos) << r.status().ToString();
  o = TinyRun(TempDir("bad"));
  o.steps = 0;
  EXPECT_NE(Train(o, nullptr).status().message().find("steps"), std::string::npos);
  o = TinyRun(TempDir("bad"));
  o.model.heads = 3;
  EXPECT_NE(Train(o, nullptr).status().message().find("dim"), std::string::npos);
  std::filesystem::remove_all(o.out_dir);
}

TEST(TrainerTest, DivergingLossStopsAndKeepsTheLastGoodCheckpoint) {
  const std::string dir = TempDir("nan");
  TrainOptions o = TinyRun(dir);
  o.steps = 40;
  o.optimizer.lr = 1e30f;  // the first update sends the weights to infinity
  o.optimizer.warmup_steps = 0;
  o.optimizer.clip_norm = 0.0f;
  o.checkpoint_every = 1;
  StatusOr<TrainResult> r = Train(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("last good checkpoint"), std::string::npos)
      << r.status().ToString();
  StatusOr<Checkpoint> ck = LoadCheckpoint(dir + "/checkpoint.bin");
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  for (float v : ck->params) ASSERT_TRUE(std::isfinite(v));
  std::filesystem::remove_all(dir);
}

TEST(CheckpointTest, RoundTripsAndRefusesDamage) {
  const std::string dir = TempDir("ckpt");
  std::filesystem::create_directories(dir);
  Checkpoint c;
  c.options = {{"steps", 3}};
  c.step = 2;
  c.cursor = 17;
  c.seconds = 1.5;
  c.history = {{1, 2.5, -1.0, 0.001, 0.7}, {2, 2.25, 2.4, 0.002, 1.5}};
  c.vocab_gguf = "GGUF-bytes";
  c.params = {1.0f, -2.0f, 3.5f};
  c.m = {0.1f, 0.2f, 0.3f};
  c.v = {0.01f, 0.02f, 0.03f};
  const std::string path = dir + "/checkpoint.bin";
  ASSERT_TRUE(SaveCheckpoint(path, c).ok());
  StatusOr<Checkpoint> back = LoadCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->options, c.options);
  EXPECT_EQ(back->step, 2);
  EXPECT_EQ(back->cursor, 17u);
  EXPECT_EQ(back->params, c.params);
  EXPECT_EQ(back->v, c.v);
  ASSERT_EQ(back->history.size(), 2u);
  EXPECT_EQ(back->history[1].eval_loss, 2.4);

  std::string bytes = ReadFile(path);
  for (size_t cut : {bytes.size() - 1, bytes.size() / 2, size_t{10}}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
    EXPECT_EQ(LoadCheckpoint(path).status().code(), StatusCode::kDataLoss) << "cut at " << cut;
  }
  bytes[bytes.size() / 2] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_EQ(LoadCheckpoint(path).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(LoadCheckpoint(dir + "/absent").status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(BatcherTest, MessageByMessageTokensEqualTheWholePromptsTokens) {
  // The trainer tokenizes message by message; the runtime tokenizes the rendered prompt.
  const std::string dir = TempDir("batcher");
  TrainOptions o = TinyRun(dir);
  o.steps = 1;
  StatusOr<TrainResult> r = Train(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  StatusOr<std::unique_ptr<engine::GgufFile>> file = engine::GgufFile::Open(r->f32_path);
  ASSERT_TRUE(file.ok());
  StatusOr<engine::Tokenizer> tok = engine::Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok());
  for (uint64_t i = 0; i < 200; ++i) {
    const Conversation conv = GenerateConversation(1, i % 2 ? Split::kTrain : Split::kHeldOut, i);
    const TokenizedConversation t = TokenizeConversation(*tok, conv.messages);
    const engine::ChatPrompt whole =
        engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, conv.messages, false);
    ASSERT_EQ(t.tokens, tok->Encode(whole.text, false, true, whole.content))
        << "conversation " << i;
    // Learned tokens: exactly the assistant messages' tokens and the <|im_end|> after each.
    int64_t learned = 0;
    for (uint8_t l : t.loss) learned += l;
    int64_t expected = 0;
    for (const engine::ChatMessage& m : conv.messages) {
      if (m.role == "assistant")
        expected += static_cast<int64_t>(tok->Encode(m.content, false).size()) + 1;
    }
    EXPECT_EQ(learned, expected) << "conversation " << i;
  }
  std::filesystem::remove_all(dir);
}

TEST(LossPlotTest, CsvAndSvgHoldEveryPoint) {
  std::vector<LossPoint> h;
  for (int i = 1; i <= 30; ++i)
    h.push_back({i, 5.0 / i, i % 10 == 0 ? 6.0 / i : -1.0, 1e-3, i * 0.5});
  const std::string csv = LossCsv(h);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 31);
  EXPECT_NE(csv.find("10,0.500000,0.600000,"), std::string::npos);
  const std::string svg = LossSvg(h, "t");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("held-out"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), 'L') >= 29 + 2, true);
}

}  // namespace
}  // namespace agentry::train
