// The CUDA-only pieces the worker uses (event timing, CUDA graphs, device names) behind an
// interface that also links without CUDA: torch_cuda.cc is compiled when LibTorch was built
// with CUDA, torch_cuda_none.cc otherwise. Internal to the worker's torch translation units.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

namespace nasforge {

// True when this binary was built against a CUDA LibTorch.
bool CudaBuilt();

// Name of CUDA device `index` ("NVIDIA H200"); "" when there is none.
std::string CudaDeviceName(int index);

// Times work queued on the current CUDA stream: Start(), queue work, StopMs() waits for it and
// returns the GPU time between the two points in milliseconds.
class CudaTimer {
 public:
  virtual ~CudaTimer() = default;
  virtual void Start() = 0;
  virtual double StopMs() = 0;
};
std::unique_ptr<CudaTimer> NewCudaTimer();

// One call of `fn` captured as a CUDA graph (after warm-up runs on a side stream, as CUDA
// requires); Replay() launches the whole graph at once on the current stream.
class CudaGraph {
 public:
  virtual ~CudaGraph() = default;
  virtual void Replay() = 0;
};
std::unique_ptr<CudaGraph> CaptureCudaGraph(const std::function<void()>& fn);

// AdamW as one fused CUDA kernel per step for all parameters (at::_fused_adamw_, LibTorch 2.x):
// LibTorch's torch::optim::AdamW launches ~10 kernels per parameter tensor per step, which
// dominates a launch-bound GPU training step of a small model. Same update rule as
// torch::optim::AdamW (decoupled weight decay, bias correction, betas 0.9/0.999, eps 1e-8).
class FusedAdamW {
 public:
  virtual ~FusedAdamW() = default;
  virtual void SetLr(double lr) = 0;
  virtual void ZeroGrad() = 0;
  virtual void Step() = 0;
};
// nullptr when this build has no fused kernel (CPU LibTorch, or parameters not on a GPU).
std::unique_ptr<FusedAdamW> NewFusedAdamW(std::vector<torch::Tensor> params, double lr,
                                          double weight_decay);

// While alive, CUDA ops run under autocast to `dtype` (mixed precision: matmuls and convs in
// bf16, reductions in fp32). A no-op without CUDA.
class CudaAutocast {
 public:
  CudaAutocast(bool on, torch::Dtype dtype);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

}  // namespace nasforge
