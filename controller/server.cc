#include "controller/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "client/channel.h"
#include "controller/job_metrics.h"
#include "controller/rpc.h"
#include "controller/rpc_metrics.h"
#include "core/log.h"
#include "core/status.h"
#include "metrics/build_info.h"
#include "metrics/metrics_server.h"
#include "ui/ui_server.h"

namespace nasforge {
namespace {

// The gRPC server's transport: TLS (mutual with a client CA) or, on loopback or with
// --insecure, plain text.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ControllerOptions& o) {
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("tls-cert: give the certificate and --tls-key together");
  }
  if (o.tls_cert.empty()) {
    if (!o.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("tls-client-ca: mutual TLS needs --tls-cert and --tls-key");
    }
    if (!IsLoopbackAddress(o.listen) && !o.insecure) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tls-cert: listening on ", o.listen,
          " (not loopback) needs TLS (--tls-cert, "
          "--tls-key), or --insecure to serve plain text (tokens readable on the network)"));
    }
    return grpc::InsecureServerCredentials();
  }
  NF_ASSIGN_OR_RETURN(std::string cert, ReadPemFile(o.tls_cert, "tls-cert"));
  NF_ASSIGN_OR_RETURN(std::string key, ReadPemFile(o.tls_key, "tls-key"));
  grpc::SslServerCredentialsOptions ssl(
      o.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!o.tls_client_ca.empty()) {
    NF_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(o.tls_client_ca, "tls-client-ca"));
  }
  ssl.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(ssl);
}

class ControllerImpl final : public Controller {
 public:
  absl::Status Init(const ControllerOptions& o) {
    NF_ASSIGN_OR_RETURN(auto creds, ServerCredentials(o));
    if (o.auth_tokens.empty() && !IsLoopbackAddress(o.listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "auth-tokens: listening on ", o.listen,
          " (not loopback) needs tokens: create them with `nasforge token create` and pass "
          "--auth-tokens FILE (docs/operations.md, Security)"));
    }
    if (o.auth_tokens.empty()) {
      Log(LogLevel::kWarn, "auth_off",
          {{"listen", o.listen}, {"hint", "loopback only; pass --auth-tokens to require tokens"}});
    }
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<ControllerMetrics>(*registry_);
    RegisterBuildInfo(*registry_, "controller");
    StoreOptions so;
    so.standby = o.standby;
    NF_ASSIGN_OR_RETURN(store_, OpenStore(o.store_url, so));
    NF_ASSIGN_OR_RETURN(int version, store_->SchemaVersion());
    StoreWriter::Options wo;
    wo.on_fatal = [fatal = o.on_fatal](const absl::Status&) {
      if (fatal) fatal();
    };
    writer_ = std::make_unique<StoreWriter>(store_.get(), metrics_.get(), wo);
    jobs_ =
        std::make_unique<JobManager>(store_.get(), writer_.get(), &clock_, metrics_.get(), o.jobs);
    NF_RETURN_IF_ERROR(jobs_->Recover());

    if (!o.metrics_listen.empty()) {
      auto jobs_gauges = std::make_shared<JobMetricsCollector>(
          [jobs = jobs_.get()] { return jobs->MetricsSnapshot(); });
      NF_ASSIGN_OR_RETURN(metrics_server_,
                          StartMetricsServer({.listen = o.metrics_listen,
                                              .tls_cert = o.metrics_tls_cert,
                                              .tls_key = o.metrics_tls_key,
                                              .insecure = o.metrics_insecure},
                                             Collectables{registry_, jobs_gauges}));
      metrics_port_ = metrics_server_->port();
    }

    grpc::EnableDefaultHealthCheckService(true);
    if (o.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    auth_ = std::make_unique<Authenticator>(o.auth_tokens);
    if (!o.artifact_dir.empty()) {
      NF_ASSIGN_OR_RETURN(artifacts_, ArtifactStore::Open(o.artifact_dir));
    }
    Log(LogLevel::kInfo, "artifacts",
        {{"dir", o.artifact_dir.empty() ? std::string("off") : o.artifact_dir}});
    if (!o.ui_listen.empty()) NF_RETURN_IF_ERROR(StartUi(o));
    job_service_ = NewJobService(jobs_.get(), auth_.get(), artifacts_.get());
    worker_service_ = NewWorkerService(jobs_.get(), auth_.get(), artifacts_.get());
    grpc::ServerBuilder b;
    b.AddListeningPort(o.listen, creds, &port_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> timers;
    timers.push_back(NewRpcMetricsInterceptor(*registry_));
    b.experimental().SetInterceptorCreators(std::move(timers));
    // Requests are small (a job spec is at most 1 MiB): refuse bigger ones before parsing.
    b.SetMaxReceiveMessageSize(4 << 20);
    b.RegisterService(job_service_.get());
    b.RegisterService(worker_service_.get());
    server_ = b.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("listen ", o.listen, ": cannot bind (is the port in use?)"));
    }
    sweeper_ = std::thread([this, every = o.sweep_interval] {
      while (!stop_.WaitForNotificationWithTimeout(every)) jobs_->ExpireLeases();
    });
    // grpc.health.v1: SERVING only while the store answers and the writer is not failing.
    health_ = std::thread([this, every = o.health_interval] {
      bool serving = true;
      int64_t reconnects_seen = 0;
      do {
        absl::Status ping = store_->Ping();
        writer_->SetProbeResult(ping);  // before saying NOT_SERVING: from then on, refuse
        bool ok = writer_->Healthy() && ping.ok();
        metrics_->serving.Set(ok ? 1 : 0);
        if (int64_t r = store_->Reconnects(); r > reconnects_seen) {
          metrics_->store_reconnects_total.Increment(static_cast<double>(r - reconnects_seen));
          reconnects_seen = r;
        }
        if (ok != serving) {
          serving = ok;
          server_->GetHealthCheckService()->SetServingStatus(ok);
          Log(ok ? LogLevel::kInfo : LogLevel::kError, "health",
              {{"status", ok ? "SERVING" : "NOT_SERVING"},
               {"reason", ok ? "store answers" : "store unavailable"}});
        }
      } while (!stop_.WaitForNotificationWithTimeout(every));
      health_done_.Notify();
    });
    Log(LogLevel::kInfo, "controller_started",
        {{"port", port_},
         {"tls", o.tls_cert.empty()        ? "off"
                 : o.tls_client_ca.empty() ? "server"
                                           : "mutual"},
         {"auth", o.auth_tokens.empty() ? "off" : "tokens"},
         {"metrics_port", metrics_port_},
         {"metrics_tls", o.metrics_tls_cert.empty() ? "off" : "on"},
         {"store", store_->Backend()},
         {"schema_version", version}});
    return absl::OkStatus();
  }

  ~ControllerImpl() override {
    Controller::Shutdown();
    if (!clean_ && writer_) {
      // The writer or health thread may still be inside the database: leave the parts they use
      // alive (the process is exiting).
      (void)writer_.release();
      (void)store_.release();
    }
  }
  int port() const override { return port_; }
  int metrics_port() const override { return metrics_port_; }
  JobManager* jobs() override { return jobs_.get(); }

  int ui_port() const override { return ui_port_; }

  absl::Status StartUi(const ControllerOptions& o) {
    const std::string host = o.ui_listen.substr(0, o.ui_listen.rfind(':'));
    if (o.auth_tokens.empty() && !IsLoopbackAddress(o.ui_listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ui-listen: the dashboard on ", o.ui_listen,
          " (not loopback) needs tokens: pass --auth-tokens FILE, or serve it on 127.0.0.1"));
    }
    auto ui = ui::StartUiServer({.listen = o.ui_listen,
                                 .tls_cert = o.ui_tls_cert,
                                 .tls_key = o.ui_tls_key,
                                 .insecure = o.ui_insecure},
                                jobs_.get(), auth_.get());
    if (!ui.ok()) {
      if (!o.ui_optional) return ui.status();
      Log(LogLevel::kWarn, "ui_off",
          {{"listen", o.ui_listen},
           {"error", ui.status().message()},
           {"hint", "pass --ui-listen HOST:PORT for another address, or --ui-listen= for none"}});
      return absl::OkStatus();
    }
    ui_server_ = *std::move(ui);
    ui_port_ = ui_server_->port();
    Log(LogLevel::kInfo, "ui_serving",
        {{"url",
          absl::StrCat(o.ui_tls_cert.empty() ? "http://" : "https://", host, ":", ui_port_, "/")}});
    return absl::OkStatus();
  }

  bool Shutdown(absl::Time deadline) override {
    if (shut_down_) return clean_;
    shut_down_ = true;
    ui_server_.reset();  // closes the dashboard's event streams (they unsubscribe)
    absl::Time start = absl::Now();
    // In-flight calls get until a third of the budget; open watch streams are cancelled then.
    // gRPC's Shutdown also waits for every cancelled call to finish, and a write call finishes
    // when its commit does: if the database hangs, tell those calls UNAVAILABLE so it can return.
    if (server_) {
      absl::Time calls_end = start + (deadline - start) / 3;
      absl::Notification server_stopped;
      std::thread stopper([&] {
        server_->Shutdown(absl::ToChronoTime(calls_end));
        server_stopped.Notify();
      });
      if (!server_stopped.WaitForNotificationWithDeadline(calls_end + absl::Milliseconds(200))) {
        writer_->FailWaiters(absl::UnavailableError(
            "the controller is shutting down and the store did not answer in time; the change "
            "may still be applied: retry against the controller that serves this store"));
      }
      stopper.join();
    }
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (sweeper_.joinable()) sweeper_.join();
    // A store ping can hang on a black-holed database: never past the deadline.
    bool health_stopped = true;
    if (health_.joinable()) {
      health_stopped = health_done_.WaitForNotificationWithDeadline(deadline);
      if (health_stopped) {
        health_.join();
      } else {
        health_.detach();
      }
    }
    size_t lost = 0;
    if (writer_) lost = writer_->Stop(deadline);
    clean_ = lost == 0 && health_stopped;
    if (clean_) {
      Log(LogLevel::kInfo, "controller_stopped", {{"port", port_}});
    } else {
      Log(LogLevel::kError, "controller_stopped",
          {{"port", port_},
           {"unflushed_records", lost},
           {"reason", "the store did not accept them before the shutdown deadline"},
           {"effect", "none of them was acknowledged; workers and clients retry them"}});
    }
    return clean_;
  }

 private:
  RealClock clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ControllerMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<HttpServer> ui_server_;  // after jobs_: destroyed before it
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<grpc::Service> job_service_;
  std::unique_ptr<grpc::Service> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread sweeper_;
  std::thread health_;
  absl::Notification health_done_;
  absl::Notification stop_;
  bool clean_ = true;
  int port_ = 0;
  int metrics_port_ = 0;
  int ui_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Controller>> Controller::Start(const ControllerOptions& options) {
  auto c = std::make_unique<ControllerImpl>();
  NF_RETURN_IF_ERROR(c->Init(options));
  return std::unique_ptr<Controller>(std::move(c));
}

}  // namespace nasforge
