#include "common/config/decoder.h"

#include <gtest/gtest.h>

namespace agentry::config {
namespace {

struct Limits {
  int64_t max_turns = 50;
  Duration idle = std::chrono::minutes(15);
  std::string mode = "fast";
  bool enabled = false;
  double ratio = 0.5;
  std::vector<std::string> tags;
  std::optional<int64_t> cap;
};

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, Limits* out) {
  ObjectDecoder d(node, path, errors);
  d.Required("maxTurns", &out->max_turns, Positive<int64_t>());
  d.Optional("idle", &out->idle, Positive<Duration>());
  d.Optional("mode", &out->mode, OneOf({"fast", "safe"}));
  d.Optional("enabled", &out->enabled);
  d.Optional("ratio", &out->ratio);
  d.Optional("tags", &out->tags);
  d.Optional("cap", &out->cap);
  return d.Finish();
}

// Decodes `yaml` as {limits: Limits} and returns the errors, one per line.
std::string DecodeErrors(const std::string& yaml, Limits* out = nullptr) {
  StatusOr<YAML::Node> doc = ParseYaml(yaml, "test.yaml");
  if (!doc.ok()) return doc.status().message();
  Errors errors;
  Limits limits;
  ObjectDecoder root(*doc, "spec", &errors);
  root.Required("limits", &limits);
  root.RejectUnknownFields();
  if (out != nullptr) *out = limits;
  return errors.ToStatus().message();
}

TEST(DecoderTest, DecodesTypedFieldsAndKeepsDefaults) {
  Limits l;
  EXPECT_EQ(DecodeErrors("limits: {maxTurns: 7, idle: 1h30m, enabled: true, tags: [a, b], "
                         "ratio: 0.25, cap: 9}",
                         &l),
            "");
  EXPECT_EQ(l.max_turns, 7);
  EXPECT_EQ(l.idle, std::chrono::minutes(90));
  EXPECT_TRUE(l.enabled);
  EXPECT_DOUBLE_EQ(l.ratio, 0.25);
  EXPECT_EQ(l.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(l.cap, 9);
  EXPECT_EQ(l.mode, "fast");  // default kept
}

TEST(DecoderTest, ErrorNamesFieldPathReasonAndPosition) {
  EXPECT_EQ(DecodeErrors("limits:\n  maxTurns: 0\n"),
            "spec.limits.maxTurns: must be a positive integer, got 0 (line 2, column 13)");
}

TEST(DecoderTest, TypeErrors) {
  EXPECT_EQ(DecodeErrors("limits: {maxTurns: ten}"),
            "spec.limits.maxTurns: must be an integer, got \"ten\" (line 1, column 20)");
  // Quoted numbers are strings, as Kubernetes reads them.
  EXPECT_NE(DecodeErrors("limits: {maxTurns: \"5\"}").find("must be an integer"),
            std::string::npos);
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 1, enabled: yes}").find("must be true or false"),
            std::string::npos);
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 1, tags: a}").find("spec.limits.tags: must be a list"),
            std::string::npos);
  EXPECT_NE(DecodeErrors("limits: {maxTurns: [1]}").find("got a list"), std::string::npos);
  EXPECT_NE(DecodeErrors("limits: 3").find("spec.limits: must be an object"), std::string::npos);
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 99999999999999999999}").find("out of range"),
            std::string::npos);
}

TEST(DecoderTest, ListElementsHaveIndexedPaths) {
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 1, tags: [a, {b: 1}]}")
                .find("spec.limits.tags[1]: must be a string, got an object"),
            std::string::npos);
}

TEST(DecoderTest, RequiredAndUnknownAndDuplicateFields) {
  EXPECT_EQ(DecodeErrors("limits: {idle: 5m}"),
            "spec.limits.maxTurns: required field is missing (line 1, column 9)");
  EXPECT_EQ(DecodeErrors("limits: {maxTurns: 1, maxTurn: 2}"),
            "spec.limits.maxTurn: unknown field (line 1, column 23)");
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 1}\nextra: 1").find("spec.extra: unknown field"),
            std::string::npos);
  EXPECT_NE(DecodeErrors("limits: {maxTurns: 1, mode: safe, mode: fast}")
                .find("spec.limits.mode: field appears more than once"),
            std::string::npos);
}

TEST(DecoderTest, ReportsEveryErrorNotJustTheFirst) {
  const std::string errors = DecodeErrors("limits: {maxTurns: -1, idle: soon, mode: slow}");
  EXPECT_NE(errors.find("maxTurns"), std::string::npos);
  EXPECT_NE(errors.find("idle: must be a duration"), std::string::npos);
  EXPECT_NE(errors.find("mode: must be one of fast or safe, got \"slow\""), std::string::npos);
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 2);
}

TEST(DecoderTest, NullMeansAbsent) {
  Limits l;
  EXPECT_EQ(DecodeErrors("limits: {maxTurns: 3, idle: null, mode: ~}", &l), "");
  EXPECT_EQ(l.idle, std::chrono::minutes(15));
  EXPECT_NE(DecodeErrors("limits: {maxTurns: null}").find("required field is missing"),
            std::string::npos);
}

TEST(DecoderTest, SyntaxErrorsNameSourceAndPosition) {
  StatusOr<YAML::Node> doc = ParseYaml("a: [1, 2\nb: 3\n", "agent.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(doc.status().message().find("agent.yaml: invalid YAML at line"), std::string::npos)
      << doc.status().message();
  EXPECT_FALSE(ParseYaml("", "empty.yaml").ok());
  EXPECT_FALSE(ParseYaml("a: 1\n---\nb: 2\n", "two.yaml").ok());
  StatusOr<std::vector<YAML::Node>> docs = ParseYamlDocuments("a: 1\n---\n---\nb: 2\n", "x");
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ(docs->size(), 2u);
}

TEST(DecoderTest, StreamsThatStallTheYamlParserAreRefused) {
  // yaml-cpp 0.7 never returns from LoadAll on these; found by fuzz/manifest_fuzz.
  for (const char* text : {",", ",labe\x03", " ,a\n"}) {
    StatusOr<std::vector<YAML::Node>> docs = ParseYamlDocuments(text, "stuck.yaml");
    ASSERT_FALSE(docs.ok()) << text;
    EXPECT_NE(docs.status().message().find("makes no progress"), std::string::npos);
  }
  // Many legitimately empty documents are still fine.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "---\n";
  EXPECT_TRUE(ParseYamlDocuments(many + "a: 1\n", "many.yaml").ok());
}

TEST(DurationTest, GoSyntax) {
  EXPECT_EQ(*ParseDuration("300ms"), Duration(300));
  EXPECT_EQ(*ParseDuration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*ParseDuration("1h30m15s"), std::chrono::seconds(5415));
  EXPECT_EQ(*ParseDuration("0"), Duration(0));
  for (const char* bad : {"", "15", "m", "1d", "1.5h", "-1s", "1h x", "5 m"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseDuration("9999999999999999h").ok());
  EXPECT_EQ(FormatDuration(std::chrono::seconds(5415)), "1h30m15s");
  EXPECT_EQ(FormatDuration(Duration(0)), "0s");
}

TEST(QuantityTest, KubernetesSuffixes) {
  EXPECT_EQ(ParseQuantity("1Gi")->value, int64_t{1} << 30);
  EXPECT_EQ(ParseQuantity("512Mi")->value, int64_t{512} << 20);
  EXPECT_EQ(ParseQuantity("1.5Gi")->value, (int64_t{3} << 30) / 2);
  EXPECT_EQ(ParseQuantity("500M")->value, 500000000);
  EXPECT_EQ(ParseQuantity("128974848")->value, 128974848);
  EXPECT_EQ(ParseQuantity("0.5")->value, 1);  // rounded up
  EXPECT_EQ(ParseQuantity("1Gi")->text, "1Gi");
  for (const char* bad : {"", "Gi", "1GB", "1.2.3Gi", ".5Gi", "1.Gi", "-1Gi", "1 Gi"}) {
    EXPECT_FALSE(ParseQuantity(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseQuantity("99999999999Pi").ok());
  EXPECT_FALSE(ParseQuantity("99999999999999999999").ok());
}

TEST(JsonDecodeTest, KeepsYamlTypesAndQuotedStrings) {
  StatusOr<YAML::Node> doc =
      ParseYaml("schema: {type: object, n: 3, f: 1.5, b: true, s: \"3\", z: null, l: [1, x]}", "t");
  ASSERT_TRUE(doc.ok());
  Errors errors;
  nlohmann::json out;
  ASSERT_TRUE(DecodeValue((*doc)["schema"], "schema", &errors, &out));
  EXPECT_EQ(out, nlohmann::json::parse(
                     R"({"type":"object","n":3,"f":1.5,"b":true,"s":"3","z":null,"l":[1,"x"]})"));
}

TEST(JsonDecodeTest, AliasBombIsBounded) {
  // Each level doubles the tree through aliases: 2^30 values if expanded naively.
  std::string yaml = "a0: &a0 [x, x]\n";
  for (int i = 1; i <= 30; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  }
  StatusOr<YAML::Node> doc = ParseYaml(yaml, "bomb.yaml");
  ASSERT_TRUE(doc.ok());
  Errors errors;
  nlohmann::json out;
  EXPECT_FALSE(DecodeValue((*doc)["a30"], "a30", &errors, &out));
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.list()[0].reason.find("too large"), std::string::npos);
}

TEST(RulesTest, DnsLabel) {
  auto rule = DnsLabel();
  EXPECT_EQ(rule("triage-1"), "");
  EXPECT_NE(rule("Triage"), "");
  EXPECT_NE(rule("-a"), "");
  EXPECT_NE(rule("a-"), "");
  EXPECT_NE(rule(std::string(64, 'a')), "");
  EXPECT_NE(rule(""), "");
}

}  // namespace
}  // namespace agentry::config
