// `agentry state` as a real process on a real unix socket: the API over gRPC, a sidecar
// killed with SIGKILL at random moments under a writing client (nothing acknowledged is
// lost, nothing is applied twice or torn, the audit chain verifies), and a volume that fills
// up (errors to the caller, no corruption).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agentry/state/v1/state.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/sha256.h"
#include "common/testing/child_process.h"
#include "runtime/state/tests/temp_dir.h"

namespace agentry::state {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One `agentry state` process; killed (SIGKILL) when dropped.
class Sidecar : public testing::ChildProcess {
 public:
  Sidecar(const std::string& dir, const std::string& socket, rlim_t file_size_limit = RLIM_INFINITY)
      : ChildProcess(AGENTRY_BINARY, {"state", "--dir", dir, "--socket", socket, "--no-metrics"},
                     dir + ".log", [file_size_limit] {
                       if (file_size_limit == RLIM_INFINITY) return;
                       // A full volume, as far as a process can tell: writes past the limit
                       // fail EFBIG (SIGXFSZ ignored, as it stays across exec).
                       signal(SIGXFSZ, SIG_IGN);
                       const rlimit limit{file_size_limit, file_size_limit};
                       setrlimit(RLIMIT_FSIZE, &limit);
                     }) {}
};

std::shared_ptr<grpc::Channel> Connect(const std::string& socket) {
  grpc::ChannelArguments args;
  // Reconnect quickly after the sidecar comes back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  return grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
}

void WithDeadline(grpc::ClientContext* c, int ms) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
  c->set_wait_for_ready(true);
}

bool WaitServing(grpc::Channel* channel) {
  auto health =
      grpc::health::v1::Health::NewStub(std::shared_ptr<grpc::Channel>(channel, [](auto*) {}));
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext c;
    WithDeadline(&c, 100);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    if (health->Check(&c, req, &resp).ok() &&
        resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
  }
  return false;
}

grpc::Status CreateSession(v1::State::Stub* stub, const std::string& id) {
  grpc::ClientContext c;
  WithDeadline(&c, 5000);
  v1::CreateSessionRequest create;
  create.set_id(id);
  create.set_agent("team-a/triage");
  v1::Session session;
  return stub->CreateSession(&c, create, &session);
}

// The whole transcript, page by page (it may be larger than one gRPC message).
grpc::Status ReadAll(v1::State::Stub* stub, const std::string& session,
                     std::vector<v1::Event>* events) {
  events->clear();
  v1::ReadTranscriptResponse page;
  do {
    grpc::ClientContext c;
    WithDeadline(&c, 10000);
    v1::ReadTranscriptRequest read;
    read.set_session_id(session);
    read.set_after_seq(events->empty() ? 0 : events->back().seq());
    if (grpc::Status s = stub->ReadTranscript(&c, read, &page); !s.ok()) return s;
    events->insert(events->end(), page.events().begin(), page.events().end());
  } while (page.more());
  return grpc::Status::OK;
}

// `agentry state` serving /metrics on a free port; the port, once it has said it serves.
class MetricsSidecar : public testing::ChildProcess {
 public:
  MetricsSidecar(const std::string& dir, const std::string& socket, const std::string& log)
      : ChildProcess(AGENTRY_BINARY,
                     {"state", "--dir", dir, "--socket", socket, "--metrics-port", "0"}, log),
        log_(log) {}

  uint16_t Port() const {
    for (int i = 0; i < 200; ++i) {
      std::stringstream text;
      text << std::ifstream(log_).rdbuf();
      const std::string s = text.str();
      if (s.find("\"msg\":\"serving\"") != std::string::npos) {
        const size_t at = s.find("\"metrics_port\":");
        return at == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(s.substr(at + 15)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }

 private:
  std::string log_;
};

// GET /metrics over HTTP/1.0: the whole response, read until the server closes.
std::string Scrape(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

// The value of the unlabelled sample `name` in an exposition; -1 when it is not there.
double Sample(const std::string& exposition, const std::string& name) {
  const size_t at = exposition.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(exposition.substr(at + name.size() + 2));
}

class SidecarTest : public ::testing::Test {
 protected:
  std::string Dir() const { return tmp_.path() + "/state"; }
  std::string Socket() const { return tmp_.path() + "/state.sock"; }

  TempDir tmp_;
};

TEST_F(SidecarTest, ServesTheApiOnAUnixSocketWithMode0660AndClearErrors) {
  Sidecar sidecar(Dir(), Socket());
  auto channel = Connect(Socket());
  ASSERT_TRUE(WaitServing(channel.get()));
  struct stat st {};
  ASSERT_EQ(stat(Socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660);
  auto stub = v1::State::NewStub(channel);

  ASSERT_TRUE(CreateSession(stub.get(), "s1").ok());
  {
    grpc::ClientContext c;
    WithDeadline(&c, 5000);
    v1::AppendEventsRequest append;
    append.set_session_id("nope");
    append.add_events()->set_kind("user");
    v1::AppendEventsResponse r;
    const grpc::Status s = stub->AppendEvents(&c, append, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "session nope: not found");
  }
  // A snapshot of several chunks streams in and back out byte for byte.
  std::string snapshot(3 * 1024 * 1024 + 17, '\0');
  std::mt19937 rng(7);
  for (char& b : snapshot) b = static_cast<char>(rng());
  {
    grpc::ClientContext c;
    WithDeadline(&c, 10000);
    v1::SnapshotInfo info;
    auto writer = stub->PutSnapshot(&c, &info);
    for (size_t i = 0; i < snapshot.size(); i += 1 << 20) {
      v1::PutSnapshotRequest piece;
      if (i == 0) {
        piece.set_session_id("s1");
        piece.set_sha256(Sha256Hex(snapshot));
      }
      piece.set_data(snapshot.substr(i, 1 << 20));
      ASSERT_TRUE(writer->Write(piece));
    }
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(info.bytes(), static_cast<int64_t>(snapshot.size()));
  }
  {
    grpc::ClientContext c;
    WithDeadline(&c, 10000);
    v1::GetSnapshotRequest get;
    get.set_session_id("s1");
    auto reader = stub->GetSnapshot(&c, get);
    v1::SnapshotChunk chunk;
    std::string back;
    int chunks = 0;
    while (reader->Read(&chunk)) {
      if (chunks++ == 0) {
        EXPECT_EQ(chunk.info().sha256(), Sha256Hex(snapshot));
      }
      back += chunk.data();
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_GT(chunks, 1);
    EXPECT_TRUE(back == snapshot);
  }
  // SIGTERM: a clean stop that removes the socket.
  EXPECT_EQ(sidecar.Signal(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(Socket()));
}

// The content of event n: its number, then a body whose length and letter follow from n,
// so a torn or misplaced event cannot pass for another.
std::string EventText(int n) {
  return "event " + std::to_string(n) + " " +
         std::string(static_cast<size_t>(100 + (n * 7919) % 20000),
                     static_cast<char>('a' + n % 26));
}

TEST_F(SidecarTest, KilledAtRandomMomentsItLosesNoAcknowledgedWriteAndAppliesNoneTwice) {
  const char* kills_env = std::getenv("AGENTRY_STATE_CRASH_KILLS");
  const int kills =
      kills_env != nullptr ? static_cast<int>(std::strtol(kills_env, nullptr, 10)) : 25;
  auto sidecar = std::make_unique<Sidecar>(Dir(), Socket());
  auto channel = Connect(Socket());
  ASSERT_TRUE(WaitServing(channel.get()));
  auto stub = v1::State::NewStub(channel);
  ASSERT_TRUE(CreateSession(stub.get(), "s").ok());

  // The writer: requests of 1 to 3 events, and now and then an audit record, each retried
  // with its request id until acknowledged, as the runtime does.
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged_events{0};
  std::atomic<int> acknowledged_audit{0};
  std::atomic<int> retries{0};
  std::vector<int> acked_first_event;  // writer thread only until joined
  std::string writer_error;
  std::thread writer([&] {
    std::mt19937 rng(42);
    int next_event = 0;
    for (int request = 0; !stop.load(); ++request) {
      const bool audit = request % 5 == 4;
      v1::AppendEventsRequest append;
      v1::AppendAuditRequest record;
      if (audit) {
        record.set_actor("agent:team-a/triage");
        record.set_action("tool.call");
        record.set_session_id("s");
        record.set_details_json(R"({"request":)" + std::to_string(request) + "}");
        record.set_request_id("a-" + std::to_string(request));
      } else {
        append.set_session_id("s");
        append.set_request_id("e-" + std::to_string(request));
        const int n = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < n; ++i) {
          v1::Event* e = append.add_events();
          e->set_kind(i % 2 == 0 ? "user" : "assistant");
          e->set_content(EventText(next_event + i));
        }
      }
      const auto give_up = Clock::now() + std::chrono::seconds(60);
      while (true) {
        grpc::ClientContext c;
        WithDeadline(&c, 2000);
        grpc::Status s;
        if (audit) {
          v1::AuditRecord out;
          s = stub->AppendAudit(&c, record, &out);
        } else {
          v1::AppendEventsResponse out;
          s = stub->AppendEvents(&c, append, &out);
          if (s.ok() &&
              (out.seqs_size() != append.events_size() || out.seqs(0) != next_event + 1)) {
            writer_error = "request " + std::to_string(request) + ": seqs start at " +
                           std::to_string(out.seqs(0)) + ", expected " +
                           std::to_string(next_event + 1);
            return;
          }
        }
        if (s.ok()) break;
        if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
            s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
          writer_error = "request " + std::to_string(request) + ": " + s.error_message();
          return;
        }
        ++retries;
        if (Clock::now() > give_up) {
          writer_error = "the sidecar did not come back within 60 s";
          return;
        }
      }
      if (audit) {
        ++acknowledged_audit;
      } else {
        next_event += append.events_size();
        acknowledged_events = next_event;
      }
    }
  });

  std::mt19937 rng(1234);
  for (int k = 0; k < kills && writer_error.empty(); ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 150));
    sidecar.reset();  // SIGKILL, wherever it is
    sidecar = std::make_unique<Sidecar>(Dir(), Socket());
  }
  // Let the writer get past its last retry before stopping it.
  const int before = acknowledged_events.load();
  for (int i = 0; i < 500 && acknowledged_events.load() == before && writer_error.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  writer.join();
  ASSERT_EQ(writer_error, "");
  EXPECT_GT(retries.load(), 0) << "no kill landed while a request was in flight";
  const int events = acknowledged_events.load();
  ASSERT_GT(events, kills);

  // Everything acknowledged is there, once, in order, whole.
  {
    std::vector<v1::Event> transcript;
    ASSERT_TRUE(ReadAll(stub.get(), "s", &transcript).ok());
    ASSERT_EQ(static_cast<int>(transcript.size()), events);
    for (int i = 0; i < events; ++i) {
      ASSERT_EQ(transcript[i].seq(), i + 1);
      ASSERT_TRUE(transcript[i].content() == EventText(i)) << "event " << i << " differs";
    }
  }
  {
    grpc::ClientContext c;
    WithDeadline(&c, 10000);
    v1::VerifyAuditResponse verify;
    ASSERT_TRUE(stub->VerifyAudit(&c, {}, &verify).ok());
    EXPECT_TRUE(verify.ok()) << verify.reason();
    EXPECT_EQ(verify.records(), acknowledged_audit.load());
  }
  EXPECT_EQ(sidecar->Signal(SIGTERM), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((Dir() + "/state.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
  sqlite3_close(db);
  std::printf("%d kills: %d events and %d audit records acknowledged, %d retries\n", kills, events,
              acknowledged_audit.load(), retries.load());
}

TEST_F(SidecarTest, AFullVolumeIsAnErrorToTheCallerAndCorruptsNothing) {
  std::vector<std::string> acked;
  {
    Sidecar sidecar(Dir(), Socket(), /*file_size_limit=*/1 << 20);
    auto channel = Connect(Socket());
    ASSERT_TRUE(WaitServing(channel.get()));
    auto stub = v1::State::NewStub(channel);
    ASSERT_TRUE(CreateSession(stub.get(), "s").ok());
    grpc::Status failure;
    for (int i = 0; i < 200 && failure.ok(); ++i) {
      grpc::ClientContext ci;
      WithDeadline(&ci, 5000);
      v1::AppendEventsRequest append;
      append.set_session_id("s");
      v1::Event* e = append.add_events();
      e->set_kind("user");
      e->set_content(EventText(i) + std::string(20000, 'z'));
      v1::AppendEventsResponse out;
      failure = stub->AppendEvents(&ci, append, &out);
      if (failure.ok()) acked.push_back(e->content());
    }
    ASSERT_FALSE(failure.ok()) << "the volume never filled";
    EXPECT_EQ(failure.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << failure.error_message();
    EXPECT_NE(failure.error_message().find("full"), std::string::npos) << failure.error_message();
    // Still serving what it has.
    std::vector<v1::Event> transcript;
    ASSERT_TRUE(ReadAll(stub.get(), "s", &transcript).ok());
    EXPECT_EQ(transcript.size(), acked.size());
  }
  // Space again (a restart without the limit): everything acknowledged is there and writes work.
  Sidecar sidecar(Dir(), Socket());
  auto channel = Connect(Socket());
  ASSERT_TRUE(WaitServing(channel.get()));
  auto stub = v1::State::NewStub(channel);
  grpc::ClientContext c;
  WithDeadline(&c, 5000);
  v1::AppendEventsRequest append;
  append.set_session_id("s");
  append.add_events()->set_kind("user");
  v1::AppendEventsResponse out;
  ASSERT_TRUE(stub->AppendEvents(&c, append, &out).ok());
  EXPECT_EQ(out.seqs(0), static_cast<int64_t>(acked.size()) + 1);
  std::vector<v1::Event> transcript;
  ASSERT_TRUE(ReadAll(stub.get(), "s", &transcript).ok());
  ASSERT_EQ(transcript.size(), acked.size() + 1);
  for (size_t i = 0; i < acked.size(); ++i) EXPECT_TRUE(transcript[i].content() == acked[i]);
}

// What the alerts read (docs/operations.md): the volume's size and free space, and a broken
// audit chain counted as soon as the sidecar starts on it, not only when someone verifies.
TEST_F(SidecarTest, MetricsShowTheVolumesSpaceAndCountAChainFoundBrokenAtStart) {
  {
    MetricsSidecar sidecar(Dir(), Socket(), tmp_.path() + "/first.log");
    const uint16_t port = sidecar.Port();
    ASSERT_NE(port, 0) << "no metrics port in the log";
    auto channel = Connect(Socket());
    ASSERT_TRUE(WaitServing(channel.get()));
    auto stub = v1::State::NewStub(channel);
    for (int i = 0; i < 3; ++i) {
      grpc::ClientContext c;
      WithDeadline(&c, 5000);
      v1::AppendAuditRequest record;
      record.set_actor("agent:team-a/triage");
      record.set_action("tool.call");
      record.set_details_json(R"({"n":)" + std::to_string(i) + "}");
      v1::AuditRecord out;
      ASSERT_TRUE(stub->AppendAudit(&c, record, &out).ok());
    }
    const std::string metrics = Scrape(port);
    EXPECT_EQ(Sample(metrics, "agentry_state_audit_verify_failures_total"), 0) << metrics;
    const fs::space_info space = fs::space(Dir());
    EXPECT_EQ(Sample(metrics, "agentry_state_volume_capacity_bytes"),
              static_cast<double>(space.capacity))
        << metrics;
    const double available = Sample(metrics, "agentry_state_volume_available_bytes");
    EXPECT_GT(available, 0) << metrics;
    EXPECT_LE(available, static_cast<double>(space.capacity)) << metrics;
    EXPECT_GT(Sample(metrics, "agentry_state_disk_bytes"), 0) << metrics;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((Dir() + "/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE audit SET actor = 'user:mallory' WHERE seq = 2", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  MetricsSidecar sidecar(Dir(), Socket(), tmp_.path() + "/second.log");
  const uint16_t port = sidecar.Port();
  ASSERT_NE(port, 0) << "no metrics port in the log";
  // "serving" is logged after the check at start, so the count is there at once.
  const std::string metrics = Scrape(port);
  EXPECT_EQ(Sample(metrics, "agentry_state_audit_verify_failures_total"), 1) << metrics;
}

}  // namespace
}  // namespace agentry::state
