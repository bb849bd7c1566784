// The latency benchmark of a built network on a device. Internal to the worker's torch
// translation units (includes <torch/torch.h>).
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "nasforge/v1/nasforge.pb.h"
#include "worker/latency.h"
#include "worker/torch_models.h"

namespace nasforge {

// "cpu", "cuda", "cuda:N" -> a device this process can use; INVALID_ARGUMENT / UNAVAILABLE
// otherwise (a CPU-only LibTorch, no GPU visible).
absl::StatusOr<torch::Device> ParseTorchDevice(const std::string& name);

// The input shape of `arch` with `batch` rows: [batch, C, H, W] (MLP: [batch, features]).
std::vector<int64_t> InputSizes(const v1::Architecture& arch, int64_t batch);

// A random input of that shape.
torch::Tensor RandomInput(const v1::Architecture& arch, int64_t batch,
                          torch::TensorOptions options = {});

// Measures `net`'s inference latency on `device` for `spec`: moves it there and converts it to
// the spec's dtype and memory format (in place: pass a model you are done training), eval
// mode, inference mode. Timed with CUDA events on a GPU (each run waits for the device), with a
// steady clock on the CPU. Warm-up, then runs until the spread is below the budget's target
// or its run/time limits.
absl::StatusOr<LatencyStats> MeasureLatency(NetImpl& net, const v1::Architecture& arch,
                                            torch::Device device, const LatencySpec& spec,
                                            const LatencyBudget& budget);

}  // namespace nasforge
