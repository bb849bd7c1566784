// One gRPC server interceptor that times every call: nasforge_controller_rpc_duration_seconds
// {service, method, code}, a histogram (its _count is the call rate by status code). Labels stay
// bounded: methods not served here (a client probing random names) count as service="other".
// For streaming calls (WatchJob) the duration is the stream's lifetime.
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/registry.h>

#include <memory>
#include <vector>

namespace nasforge {

// The factory to give ServerBuilder::experimental().SetInterceptorCreators. Registers its family
// in `registry`, which must outlive the server. Thread-safe.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewRpcMetricsInterceptor(
    prometheus::Registry& registry);

}  // namespace nasforge
