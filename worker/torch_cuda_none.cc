// LibTorch without CUDA (Debian's libtorch-dev): nothing to time on, no graphs (torch_cuda.h).
#include "worker/torch_cuda.h"

namespace nasforge {

bool CudaBuilt() { return false; }
std::string CudaDeviceName(int) { return ""; }
CudaAutocast::CudaAutocast(bool, torch::Dtype) : on_(false) {}
CudaAutocast::~CudaAutocast() = default;
std::unique_ptr<FusedAdamW> NewFusedAdamW(std::vector<torch::Tensor>, double, double) {
  return nullptr;
}
std::unique_ptr<CudaTimer> NewCudaTimer() { return nullptr; }
std::unique_ptr<CudaGraph> CaptureCudaGraph(const std::function<void()>&) { return nullptr; }

}  // namespace nasforge
