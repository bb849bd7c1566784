#include "controller/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "controller/rpc.h"
#include "core/log.h"
#include "core/status.h"

namespace nasforge {
namespace {

class ControllerImpl final : public Controller {
 public:
  absl::Status Init(const ControllerOptions& o) {
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<ControllerMetrics>(*registry_);
    NF_ASSIGN_OR_RETURN(store_, OpenStore(o.store_url));
    NF_ASSIGN_OR_RETURN(int version, store_->SchemaVersion());
    writer_ = std::make_unique<StoreWriter>(store_.get(), metrics_.get());
    jobs_ =
        std::make_unique<JobManager>(store_.get(), writer_.get(), &clock_, metrics_.get(), o.jobs);
    NF_RETURN_IF_ERROR(jobs_->Recover());

    if (!o.metrics_listen.empty()) {
      try {
        exposer_ = std::make_unique<prometheus::Exposer>(o.metrics_listen);
        exposer_->RegisterCollectable(registry_);
        auto ports = exposer_->GetListeningPorts();
        metrics_port_ = ports.empty() ? 0 : ports[0];
      } catch (const std::exception& e) {
        return absl::UnavailableError(absl::StrCat("metrics-listen ", o.metrics_listen,
                                                   ": cannot listen: ", e.what(),
                                                   " (is the port in use?)"));
      }
    }

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    job_service_ = NewJobService(jobs_.get());
    worker_service_ = NewWorkerService(jobs_.get());
    grpc::ServerBuilder b;
    b.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port_);
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
    Log(LogLevel::kInfo, "controller_started",
        {{"port", port_},
         {"metrics_port", metrics_port_},
         {"store", store_->Backend()},
         {"schema_version", version}});
    return absl::OkStatus();
  }

  ~ControllerImpl() override { Shutdown(); }
  int port() const override { return port_; }
  int metrics_port() const override { return metrics_port_; }
  JobManager* jobs() override { return jobs_.get(); }

  void Shutdown() override {
    if (shut_down_) return;
    shut_down_ = true;
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (sweeper_.joinable()) sweeper_.join();
    if (writer_) {
      absl::Status st = writer_->Flush();
      if (!st.ok()) Log(LogLevel::kError, "final_flush_failed", {{"error", st.message()}});
    }
    Log(LogLevel::kInfo, "controller_stopped", {{"port", port_}});
  }

 private:
  RealClock clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ControllerMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<grpc::Service> job_service_;
  std::unique_ptr<grpc::Service> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread sweeper_;
  absl::Notification stop_;
  int port_ = 0;
  int metrics_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Controller>> Controller::Start(const ControllerOptions& options) {
  auto c = std::make_unique<ControllerImpl>();
  NF_RETURN_IF_ERROR(c->Init(options));
  return std::unique_ptr<Controller>(std::move(c));
}

}  // namespace nasforge
