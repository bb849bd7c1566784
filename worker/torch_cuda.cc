// CUDA builds only (see torch_cuda.h).
#include "worker/torch_cuda.h"

#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace nasforge {

bool CudaBuilt() { return true; }

std::string CudaDeviceName(int index) {
  if (!torch::cuda::is_available() || index >= static_cast<int>(torch::cuda::device_count())) {
    return "";
  }
  return at::cuda::getDeviceProperties(index)->name;
}

namespace {

class EventTimer final : public CudaTimer {
 public:
  void Start() override { start_.record(); }
  double StopMs() override {
    stop_.record();
    stop_.synchronize();
    return start_.elapsed_time(stop_);
  }

 private:
  at::cuda::CUDAEvent start_{cudaEventDefault}, stop_{cudaEventDefault};
};

class Graph final : public CudaGraph {
 public:
  explicit Graph(const std::function<void()>& fn) {
    auto side = c10::cuda::getStreamFromPool();
    side.wait(c10::cuda::getCurrentCUDAStream());
    {
      c10::cuda::CUDAStreamGuard guard(side);
      for (int i = 0; i < 3; ++i) fn();
      side.synchronize();
      graph_.capture_begin();
      fn();
      graph_.capture_end();
    }
    torch::cuda::synchronize();
  }
  void Replay() override { graph_.replay(); }

 private:
  at::cuda::CUDAGraph graph_;
};

}  // namespace

CudaAutocast::CudaAutocast(bool on, torch::Dtype dtype) : on_(on) {
  if (!on_) return;
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
}

CudaAutocast::~CudaAutocast() {
  if (!on_) return;
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  at::autocast::clear_cache();
}

std::unique_ptr<CudaTimer> NewCudaTimer() { return std::make_unique<EventTimer>(); }

std::unique_ptr<CudaGraph> CaptureCudaGraph(const std::function<void()>& fn) {
  return std::make_unique<Graph>(fn);
}

}  // namespace nasforge
