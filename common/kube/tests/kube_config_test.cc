// Kubeconfig and in-cluster configuration: the current context's cluster and user, data or
// files, relative paths, and errors that name the entry.
#include "common/kube/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace agentry::kube {
namespace {

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/kube_config_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_ + "/certs");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST(Base64Test, DecodesWithAndWithoutPaddingAndRefusesOtherBytes) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8h"), "hello!");
  EXPECT_EQ(*DecodeBase64(""), "");
  EXPECT_FALSE(DecodeBase64("aGVs*G8=").ok());
  EXPECT_FALSE(DecodeBase64("aGVsb").ok());  // one character cannot end a group
}

TEST_F(KubeConfigTest, TheCurrentContextPicksClusterUserAndNamespace) {
  Write("certs/ca.pem", "CA PEM\n");
  Write("certs/client.pem", "CERT PEM\n");
  Write("certs/client.key", "KEY PEM\n");
  const std::string path = Write("config", R"(apiVersion: v1
kind: Config
current-context: work
clusters:
  - name: other
    cluster: {server: "https://other:6443"}
  - name: prod
    cluster:
      server: "https://10.0.0.1:6443"
      certificate-authority: certs/ca.pem
contexts:
  - name: home
    context: {cluster: other, user: nobody}
  - name: work
    context: {cluster: prod, user: operator, namespace: agents}
users:
  - name: operator
    user:
      client-certificate: certs/client.pem
      client-key: certs/client.key
      token: abc123
)");
  StatusOr<KubeConfig> config = LoadKubeConfig(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->ca_file, dir_ + "/certs/ca.pem");  // relative to the kubeconfig
  EXPECT_EQ(config->client_cert_pem, "CERT PEM\n");
  EXPECT_EQ(config->client_key_pem, "KEY PEM\n");
  EXPECT_EQ(config->token, "abc123");
  EXPECT_EQ(config->namespace_name, "agents");
}

TEST_F(KubeConfigTest, DataFieldsAreBase64) {
  const std::string path = Write("config", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority-data: Q0EgUEVN}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]
)");
  StatusOr<KubeConfig> config = LoadKubeConfig(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->ca_pem, "CA PEM");
  EXPECT_EQ(config->client_cert_pem, "CERT");
  EXPECT_EQ(config->client_key_pem, "KEY");
  EXPECT_EQ(config->namespace_name, "default");
}

TEST_F(KubeConfigTest, MistakesNameTheEntry) {
  const auto error = [&](const std::string& text) {
    return LoadKubeConfig(Write("bad", text)).status().message();
  };
  EXPECT_EQ(error("clusters: []\n"), "kubeconfig " + dir_ + "/bad: current-context: not set");
  EXPECT_EQ(error("current-context: x\ncontexts: []\n"),
            "kubeconfig " + dir_ + "/bad: no context named \"x\"");
  EXPECT_EQ(error("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"),
            "kubeconfig " + dir_ + "/bad: contexts[0].context.cluster: no cluster named \"k\"");
  EXPECT_EQ(
      error("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
            "clusters: [{name: k, cluster: {server: k:6443}}]\n"),
      "kubeconfig " + dir_ + "/bad: clusters[0].cluster.server: an http(s):// URL, got \"k:6443\"");
  EXPECT_NE(error("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                  "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                  "users: [{name: u, user: {exec: {command: aws}}}]\n")
                .find("users[0].user: exec and auth-provider plugins are not supported"),
            std::string::npos);
  EXPECT_NE(error("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                  "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                  "users: [{name: u, user: {client-certificate-data: Q0VSVA==}}]\n")
                .find("a client certificate needs its key"),
            std::string::npos);
  EXPECT_NE(error("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                  "clusters: [{name: k, cluster: {server: 'https://k', "
                  "certificate-authority-data: '%%%'}}]\n")
                .find("clusters[0].cluster.certificate-authority-data: not base64"),
            std::string::npos);
}

TEST_F(KubeConfigTest, InClusterReadsTheServiceAccountMount) {
  Write("token", "tok\n");
  Write("ca.crt", "CA");
  Write("namespace", "team-a\n");
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  StatusOr<KubeConfig> config = InClusterConfig(dir_);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
  EXPECT_EQ(config->token_file, dir_ + "/token");
  EXPECT_EQ(config->ca_file, dir_ + "/ca.crt");
  EXPECT_EQ(config->namespace_name, "team-a");
  EXPECT_EQ(InClusterConfig(dir_).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace agentry::kube
