// Authentication and authorisation: the token file, the role table against every RPC the
// services define, and the controller over real gRPC with tokens: missing, unknown, revoked and
// wrong-role tokens, job ownership, and a worker credential used on another worker's lease.
#include "controller/auth.h"

#include <grpcpp/generic/generic_stub.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "client/channel.h"
#include "controller/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nasforge/v1/nasforge.grpc.pb.h"
#include "tests/test_util.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

std::vector<const google::protobuf::ServiceDescriptor*> Services() {
  const auto* file = v1::Job::descriptor()->file();
  return {file->FindServiceByName("JobService"), file->FindServiceByName("WorkerService")};
}

std::string TempPath(const std::string& what) {
  return absl::StrCat(std::filesystem::temp_directory_path().string(), "/auth-", getpid(), "-",
                      ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", what);
}

TEST(TokenFileTest, CreateFindRevokeAndReload) {
  std::string path = TempPath("tokens");
  std::filesystem::remove(path);
  TokenFile f = TokenFile::Load(path).value();  // missing: empty
  std::string alice = f.Create("alice", Role::kSubmit, absl::FromUnixSeconds(1)).value();
  std::string w = f.Create("w1", Role::kWorker, absl::FromUnixSeconds(2)).value();
  EXPECT_EQ(alice.size(), 67u);
  EXPECT_NE(alice, w);
  EXPECT_EQ(f.Create("alice", Role::kRead, absl::Now()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.Create("bad name", Role::kRead, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(f.Save(path).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, ::testing::Not(HasSubstr(alice))) << "only hashes are stored";
  TokenFile g = TokenFile::Load(path).value();
  ASSERT_TRUE(g.Find(alice).has_value());
  EXPECT_EQ(g.Find(alice)->name, "alice");
  EXPECT_EQ(g.Find(alice)->role, Role::kSubmit);
  EXPECT_FALSE(g.Find(alice + "x").has_value());
  EXPECT_FALSE(g.Find("").has_value());
  ASSERT_TRUE(g.Revoke("alice").ok());
  EXPECT_FALSE(g.Find(alice).has_value());
  EXPECT_EQ(g.Revoke("alice").code(), absl::StatusCode::kNotFound);
  std::ofstream(path, std::ios::app) << "garbage line\n";
  EXPECT_THAT(TokenFile::Load(path).status().message(), HasSubstr("line 4"));
  std::filesystem::remove(path);
}

TEST(AuthorizeTest, EveryMethodOfEveryServiceHasARule) {
  // A method added to the proto without a rule is denied to everyone: this test names it.
  for (const auto* svc : Services()) {
    for (int i = 0; i < svc->method_count(); ++i) {
      const std::string m = svc->method(i)->name();
      Principal admin{"a", Role::kAdmin}, worker{"w", Role::kWorker};
      bool someone =
          Authorize(admin, svc->name(), m).ok() || Authorize(worker, svc->name(), m).ok();
      EXPECT_TRUE(someone) << svc->name() << "/" << m << " has no rule in controller/auth.cc";
    }
  }
  Principal reader{"r", Role::kRead}, submitter{"s", Role::kSubmit}, worker{"w", Role::kWorker};
  EXPECT_TRUE(Authorize(reader, "JobService", "QueryPareto").ok());
  EXPECT_EQ(Authorize(reader, "JobService", "SubmitJob").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authorize(submitter, "JobService", "CancelJob").ok());
  EXPECT_EQ(Authorize(submitter, "WorkerService", "LeaseTrial").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(worker, "JobService", "ListJobs").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(Principal{"x", Role::kAdmin}, "JobService", "DropEverything").code(),
            absl::StatusCode::kPermissionDenied);
}

class AuthRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = TempPath("tokens");
    db_ = TempPath("db");
    std::filesystem::remove(tokens_path_);
    std::filesystem::remove(db_);
    TokenFile f;
    for (auto [name, role] : std::vector<std::pair<std::string, Role>>{{"alice", Role::kSubmit},
                                                                       {"bob", Role::kSubmit},
                                                                       {"rita", Role::kRead},
                                                                       {"root", Role::kAdmin},
                                                                       {"w1", Role::kWorker},
                                                                       {"w2", Role::kWorker}}) {
      secret_[name] = f.Create(name, role, absl::Now()).value();
    }
    ASSERT_TRUE(f.Save(tokens_path_).ok());
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "";
    o.store_url = "sqlite://" + db_;
    o.auth_tokens = tokens_path_;
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
  }
  void TearDown() override {
    controller_->Shutdown();
    std::filesystem::remove(db_);
    std::filesystem::remove(tokens_path_);
  }
  std::shared_ptr<grpc::Channel> As(const std::string& who) {
    ChannelOptions o;
    o.target = absl::StrCat("127.0.0.1:", controller_->port());
    o.token = who.empty() ? "" : secret_.count(who) ? secret_[who] : who;
    return OpenChannel(std::move(o)).value();
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c;
  }
  grpc::Status Submit(const std::string& who, v1::Job* job) {
    v1::SubmitJobRequest r;
    r.set_spec_yaml(testing::ReadExampleJob());
    return v1::JobService::NewStub(As(who))->SubmitJob(Ctx().get(), r, job);
  }

  std::string tokens_path_, db_;
  std::map<std::string, std::string> secret_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(AuthRpcTest, EveryMethodRefusesAMissingOrUnknownToken) {
  for (const std::string& who : {std::string(""), std::string("nf_0000")}) {
    grpc::GenericStub stub(As(who));
    for (const auto* svc : Services()) {
      for (int i = 0; i < svc->method_count(); ++i) {
        const std::string path = absl::StrCat("/", svc->full_name(), "/", svc->method(i)->name());
        grpc::ByteBuffer resp;
        grpc::Slice empty("");
        grpc::ByteBuffer req(&empty, 1);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s;
        // A refused call ends with its status before any message, streaming or not.
        absl::Notification done;
        stub.UnaryCall(&ctx, path, grpc::StubOptions(), &req, &resp, [&](grpc::Status st) {
          s = st;
          done.Notify();
        });
        done.WaitForNotification();
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << path << " with token '" << who << "': " << s.error_message();
      }
    }
  }
}

TEST_F(AuthRpcTest, RolesOwnersAndRevocation) {
  v1::Job job;
  ASSERT_TRUE(Submit("alice", &job).ok());
  EXPECT_EQ(job.owner(), "alice");
  v1::Job other;
  EXPECT_EQ(Submit("rita", &other).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "read may not submit";
  EXPECT_EQ(Submit("w1", &other).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "a worker token is for the worker service";
  // Bob sees neither alice's job nor may cancel it; root may.
  v1::GetJobRequest g;
  g.set_job_id(job.id());
  v1::Job seen;
  EXPECT_EQ(v1::JobService::NewStub(As("bob"))->GetJob(Ctx().get(), g, &seen).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ListJobsResponse list;
  ASSERT_TRUE(v1::JobService::NewStub(As("bob"))->ListJobs(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
  ASSERT_TRUE(v1::JobService::NewStub(As("alice"))->ListJobs(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
  v1::CancelJobRequest c;
  c.set_job_id(job.id());
  EXPECT_EQ(v1::JobService::NewStub(As("bob"))->CancelJob(Ctx().get(), c, &seen).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(v1::JobService::NewStub(As("root"))->GetJob(Ctx().get(), g, &seen).ok());
  // Revoked: refused once the controller has re-read the file (it checks once a second).
  TokenFile f = TokenFile::Load(tokens_path_).value();
  ASSERT_TRUE(f.Revoke("alice").ok());
  ASSERT_TRUE(f.Save(tokens_path_).ok());
  grpc::Status s;
  for (int i = 0; i < 100; ++i) {
    s = v1::JobService::NewStub(As("alice"))->GetJob(Ctx().get(), g, &seen);
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the reload interval, not a sync
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(v1::JobService::NewStub(As("root"))->CancelJob(Ctx().get(), c, &seen).ok());
}

TEST_F(AuthRpcTest, AWorkersLeaseIsItsCredentials) {
  v1::Job job;
  ASSERT_TRUE(Submit("alice", &job).ok());
  auto w1 = v1::WorkerService::NewStub(As("w1"));
  auto w2 = v1::WorkerService::NewStub(As("w2"));
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("gpu-7");
  reg.mutable_hardware()->set_name("cpu-1t");
  v1::RegisterWorkerResponse rr;
  ASSERT_TRUE(w1->RegisterWorker(Ctx().get(), reg, &rr).ok());
  EXPECT_EQ(w2->RegisterWorker(Ctx().get(), reg, &rr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED)
      << "another credential cannot take over a worker id";
  v1::LeaseTrialRequest lr;
  lr.set_worker_id("gpu-7");
  v1::LeaseTrialResponse lease;
  ASSERT_TRUE(w1->LeaseTrial(Ctx().get(), lr, &lease).ok());
  ASSERT_TRUE(lease.has_trial());
  // w2 holds a valid worker token but not this worker's: every call on the lease is refused.
  v1::HeartbeatRequest hb;
  hb.set_worker_id("gpu-7");
  *hb.mutable_lease() = lease.lease();
  v1::HeartbeatResponse hr;
  EXPECT_EQ(w2->Heartbeat(Ctx().get(), hb, &hr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::ReportResultRequest res;
  res.set_worker_id("gpu-7");
  *res.mutable_lease() = lease.lease();
  (*res.mutable_metrics())["accuracy"] = 0.99;
  v1::ReportResultResponse rres;
  EXPECT_EQ(w2->ReportResult(Ctx().get(), res, &rres).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(w2->LeaseTrial(Ctx().get(), lr, &lease).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The holder's own report goes through.
  EXPECT_TRUE(w1->ReportResult(Ctx().get(), res, &rres).ok());
}

// Resident memory of this process (the controller runs in it), in bytes.
int64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

TEST_F(AuthRpcTest, HostileSpecsAreRefusedCheaply) {
  auto stub = v1::JobService::NewStub(As("alice"));
  auto submit = [&](const std::string& yaml) {
    v1::SubmitJobRequest r;
    r.set_spec_yaml(yaml);
    v1::Job job;
    return stub->SubmitJob(Ctx().get(), r, &job);
  };
  const int64_t before = RssBytes();
  // Billion laughs: 10^9 nodes once expanded, under keys the spec does not have: refused at the
  // first unknown key, before anything is expanded.
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1)), refs;
    for (int k = 0; k < 10; ++k) refs += (k ? ", *" : "*") + prev;
    laughs += std::string(1, c) + ": &" + std::string(1, c) + " [" + refs + "]\n";
  }
  grpc::Status s = submit(laughs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown field 'a'"));
  // The same within the schema: 20,000 aliases of one stage; the node bound stops it.
  std::string stages =
      "search_space:\n  mbconv:\n    stem_channels: &a [8, 8, 8, 8, 8, 8, 8, 8, 8, 8]\n"
      "    stages: [&s {kernel: *a, expansion: *a, repeats: *a, channels: *a}";
  for (int i = 0; i < 20000; ++i) stages += ", *s";
  s = submit(stages + "]\n");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("aliases"));
  // Deep nesting, duplicate keys, NaN, a 2 MiB spec, a 5 MiB request.
  EXPECT_EQ(submit("name: " + std::string(10000, '[') + std::string(10000, ']')).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  s = submit("name: a\nname: b\n");
  EXPECT_THAT(s.error_message(), HasSubstr("line 2: duplicate key"));
  s = submit(testing::ReadExampleJob() + "\nlease_seconds: .nan\n");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = submit("name: \"" + std::string(2 << 20, 'x') + "\"\n");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("bytes"));
  s = submit(std::string(5 << 20, '#'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // None of it grew the controller: well under the 7 GB one alias spec once took.
  EXPECT_LT(RssBytes() - before, int64_t{256} << 20);
  v1::ListJobsResponse list;
  ASSERT_TRUE(stub->ListJobs(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.jobs_size(), 0) << "nothing was created";
}

// TLS with certificates the test makes itself (openssl): a CA, the controller's certificate
// for 127.0.0.1, a client certificate, an impostor CA and an expired certificate.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        absl::StrCat(std::filesystem::temp_directory_path().string(), "/nasforge-tls-", getpid()));
    std::filesystem::create_directories(*dir_);
    const std::string d = *dir_;
    auto sh = [](const std::string& cmd) {
      ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
    };
    const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    for (const char* ca : {"ca", "impostor"}) {
      sh(absl::StrCat(
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", d, "/",
          ca, ".key -out ", d, "/", ca, ".pem -days 2 -subj /CN=", ca));
    }
    std::ofstream(d + "/server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(d + "/client.ext") << "extendedKeyUsage=clientAuth\n";
    auto sign = [&](const std::string& name, const std::string& ca, const std::string& ext,
                    int days) {
      sh(absl::StrCat(key, " -keyout ", d, "/", name, ".key -out ", d, "/", name,
                      ".csr -subj /CN=", name));
      sh(absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d, "/", ca,
                      ".pem -CAkey ", d, "/", ca, ".key -CAcreateserial -out ", d, "/", name,
                      ".pem -days ", days, " -extfile ", d, "/", ext));
    };
    sign("server", "ca", "server.ext", 2);
    sign("expired", "ca", "server.ext", -1);  // notAfter before notBefore: expired
    sign("client", "ca", "client.ext", 2);
    sign("rogue", "impostor", "client.ext", 2);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string F(const std::string& name) { return *dir_ + "/" + name; }

  // Starts a controller on loopback with the given TLS files.
  void Start(const std::string& cert, const std::string& key, const std::string& client_ca = "") {
    ControllerOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "";
    o.store_url = "sqlite://" + F(absl::StrCat("db-", ++n_));
    o.tls_cert = cert;
    o.tls_key = key;
    o.tls_client_ca = client_ca;
    auto c = Controller::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
  }
  void TearDown() override {
    if (controller_) controller_->Shutdown();
  }
  // ListJobs over a channel with `ca` (empty: plain text) and an optional client certificate.
  grpc::StatusCode Call(const std::string& ca, const std::string& client = "") {
    ChannelOptions o;
    o.target = absl::StrCat("127.0.0.1:", controller_->port());
    o.tls_ca = ca;
    if (!client.empty()) {
      o.tls_cert = F(client + ".pem");
      o.tls_key = F(client + ".key");
    }
    auto channel = OpenChannel(std::move(o));
    EXPECT_TRUE(channel.ok()) << channel.status();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListJobsResponse resp;
    return v1::JobService::NewStub(*channel)->ListJobs(&ctx, {}, &resp).error_code();
  }

  static std::string* dir_;
  int n_ = 0;
  std::unique_ptr<Controller> controller_;
};
std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ServerTlsAcceptsItsCaAndRefusesOthers) {
  Start(F("server.pem"), F("server.key"));
  EXPECT_EQ(Call(F("ca.pem")), grpc::StatusCode::OK);
  EXPECT_NE(Call(F("impostor.pem")), grpc::StatusCode::OK) << "a CA that did not sign the server";
  EXPECT_NE(Call(""), grpc::StatusCode::OK) << "plain text to a TLS server";
}

TEST_F(TlsTest, AnExpiredServerCertificateIsRefused) {
  Start(F("expired.pem"), F("expired.key"));
  EXPECT_NE(Call(F("ca.pem")), grpc::StatusCode::OK);
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  Start(F("server.pem"), F("server.key"), F("ca.pem"));
  EXPECT_EQ(Call(F("ca.pem"), "client"), grpc::StatusCode::OK);
  EXPECT_NE(Call(F("ca.pem")), grpc::StatusCode::OK) << "no client certificate";
  EXPECT_NE(Call(F("ca.pem"), "rogue"), grpc::StatusCode::OK) << "signed by another CA";
}

TEST_F(TlsTest, ControllerMetricsOverHttps) {
  ControllerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.metrics_tls_cert = F("server.pem");
  o.metrics_tls_key = F("server.key");
  o.store_url = "sqlite://" + F("db-metrics");
  auto c = Controller::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  controller_ = std::move(*c);
  auto curl = [&](const std::string& args) {
    return testing::CommandOutput(absl::StrCat(
        "curl -s --max-time 10 ", args, "127.0.0.1:", controller_->metrics_port(), "/metrics"));
  };
  EXPECT_THAT(curl("--cacert " + F("ca.pem") + " https://"),
              HasSubstr("nasforge_controller_leases_granted_total"));
  EXPECT_EQ(curl("--cacert " + F("impostor.pem") + " https://"), "") << "another CA";
  EXPECT_EQ(curl("http://"), "") << "no plain HTTP on the HTTPS port";
  // Off loopback, plain HTTP must be asked for by name.
  ControllerOptions open = o;
  open.metrics_listen = "0.0.0.0:0";
  open.metrics_tls_cert = open.metrics_tls_key = "";
  open.store_url = "sqlite://" + F("db-metrics-open");
  auto refused = Controller::Start(open);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("--metrics-insecure"));
}

TEST_F(TlsTest, PlainTextAndNoTokensOnlyOnLoopback) {
  ControllerOptions o;
  o.listen = "0.0.0.0:0";
  o.metrics_listen = "";
  o.store_url = "sqlite://" + F("db-open");
  auto c = Controller::Start(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("tls-cert"));
  o.insecure = true;
  c = Controller::Start(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("auth-tokens"));
  // The client side: plain text to a non-loopback address needs --insecure.
  ChannelOptions co;
  co.target = "10.0.0.1:50051";
  EXPECT_THAT(OpenChannel(co).status().message(), HasSubstr("tls-ca"));
  co.insecure = true;
  EXPECT_TRUE(OpenChannel(co).ok());
}

}  // namespace
}  // namespace nasforge
