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
    at::cuda::CUDAEvent ready;
    ready.record(c10::cuda::getCurrentCUDAStream());
    ready.block(side);
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

namespace {

class FusedAdamWImpl final : public FusedAdamW {
 public:
  FusedAdamWImpl(std::vector<torch::Tensor> params, double lr, double wd)
      : params_(std::move(params)), lr_(lr), wd_(wd) {
    for (const auto& p : params_) {
      exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      steps_.push_back(torch::zeros({}, p.options().dtype(torch::kFloat32)));
    }
  }
  void SetLr(double lr) override { lr_ = lr; }
  void ZeroGrad() override {
    for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  }
  void Step() override {
    std::vector<torch::Tensor> params, grads, m, v, steps;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].grad().defined()) continue;
      params.push_back(params_[i]);
      grads.push_back(params_[i].grad());
      m.push_back(exp_avg_[i]);
      v.push_back(exp_avg_sq_[i]);
      steps.push_back(steps_[i]);
    }
    if (params.empty()) return;
    torch::NoGradGuard ng;
    at::_foreach_add_(steps, 1);
    at::_fused_adamw_(params, grads, m, v, /*max_exp_avg_sqs=*/{}, steps, lr_, 0.9, 0.999, wd_,
                      1e-8, /*amsgrad=*/false, /*maximize=*/false);
  }

 private:
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_, steps_;
  double lr_, wd_;
};

}  // namespace

std::unique_ptr<FusedAdamW> NewFusedAdamW(std::vector<torch::Tensor> params, double lr,
                                          double weight_decay) {
  for (const auto& p : params) {
    if (!p.is_cuda()) return nullptr;
  }
  return std::make_unique<FusedAdamWImpl>(std::move(params), lr, weight_decay);
}

std::unique_ptr<CudaTimer> NewCudaTimer() { return std::make_unique<EventTimer>(); }

std::unique_ptr<CudaGraph> CaptureCudaGraph(const std::function<void()>& fn) {
  return std::make_unique<Graph>(fn);
}

}  // namespace nasforge
