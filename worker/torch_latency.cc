// The latency benchmark (torch_latency.h).
#include "worker/torch_latency.h"

#include <chrono>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "core/search_space.h"
#include "worker/latency_runtime.h"
#include "worker/torch_cuda.h"
#include "worker/trainer.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

torch::Dtype DtypeOf(const std::string& precision) {
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") return torch::kHalf;
  return torch::kFloat32;
}

}  // namespace

absl::StatusOr<torch::Device> ParseTorchDevice(const std::string& name) {
  if (name.empty() || name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("device: must be cpu, cuda or cuda:N, got '", name, "'"));
  }
  if (!CudaBuilt()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", name,
                     ": this worker was built against a CPU-only LibTorch; build it with a CUDA "
                     "LibTorch (docs/operations.md: GPU workers)"));
  }
  try {
    torch::Device d(name);
    if (!torch::cuda::is_available()) {
      return absl::UnavailableError(absl::StrCat("device ", name, ": no CUDA device visible"));
    }
    int index = d.has_index() ? d.index() : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::UnavailableError(
          absl::StrCat("device ", name, ": only ", torch::cuda::device_count(), " CUDA devices"));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", name, "': ", e.what_without_backtrace()));
  }
}

std::vector<int64_t> InputSizes(const v1::Architecture& arch, int64_t batch) {
  InputShape in = ArchInputShape(arch);
  if (in.flat) return {batch, in.channels};
  return {batch, in.channels, in.height, in.width};
}

torch::Tensor RandomInput(const v1::Architecture& arch, int64_t batch,
                          torch::TensorOptions options) {
  return torch::randn(InputSizes(arch, batch), options);
}

absl::StatusOr<LatencyStats> MeasureLatency(NetImpl& net, const v1::Architecture& arch,
                                            torch::Device device, const LatencySpec& spec,
                                            const LatencyBudget& budget) {
  if (absl::Status s = ValidateLatencySpec(spec, "latency"); !s.ok()) return s;
  const bool cuda = device.is_cuda();
  if (spec.cuda_graph && !cuda) {
    return absl::InvalidArgumentError("latency.cuda_graph: needs a CUDA device");
  }
  try {
    const auto t_all = Clock::now();
    const torch::Dtype dtype = DtypeOf(spec.precision);
    // cuDNN picks its fastest algorithm per shape (what a serving stack does; the PyTorch side
    // of the benches sets torch.backends.cudnn.benchmark too).
    if (cuda) at::globalContext().setBenchmarkCuDNN(true);
    net.eval();
    net.to(device, dtype);
    torch::Tensor x =
        RandomInput(arch, spec.batch, torch::TensorOptions().device(device)).to(dtype);
    const bool nhwc = spec.channels_last && x.dim() == 4;
    if (nhwc) {
      for (auto& p : net.parameters()) {
        if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
      }
      x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    }
    c10::InferenceMode guard;
    auto forward = [&] { (void)net.forward(x); };

    std::unique_ptr<CudaGraph> graph;
    if (spec.cuda_graph) {
      graph = CaptureCudaGraph(forward);
      if (!graph) return absl::FailedPreconditionError("latency.cuda_graph: no CUDA support");
    }
    std::function<void()> run =
        graph ? std::function<void()>([&] { graph->Replay(); }) : std::function<void()>(forward);
    std::unique_ptr<CudaTimer> timer = cuda ? NewCudaTimer() : nullptr;
    auto timed = [&]() -> double {
      if (timer) {
        timer->Start();
        run();
        return timer->StopMs();
      }
      auto s = Clock::now();
      run();
      return 1e3 * Since(s);
    };

    const auto t_warm = Clock::now();
    for (int i = 0; i < budget.warmup_runs || Since(t_warm) < budget.warmup_seconds; ++i) {
      (void)timed();
      if (i > 10 * budget.warmup_runs + 1000) break;            // a very fast model: enough
      if (i >= 2 && Since(t_warm) > budget.max_seconds) break;  // a very slow one: enough
    }
    std::vector<double> ms;
    ms.reserve(budget.max_runs);
    const auto t0 = Clock::now();
    LatencyStats s;
    // Runs until the spread is small once min_runs are in, or the time is up (at least
    // kMinRuns even for a model slower than the whole budget), or max_runs.
    constexpr int kMinRuns = 5;
    while (static_cast<int>(ms.size()) < budget.max_runs) {
      ms.push_back(timed());
      const int n = static_cast<int>(ms.size());
      if (n % 5 != 0 && Since(t0) <= budget.max_seconds) continue;
      double med = Quantile(ms, 0.5);
      s.spread = med > 0 ? (Quantile(ms, 0.75) - Quantile(ms, 0.25)) / med : 0;
      if (n >= budget.min_runs && Since(t0) >= budget.min_seconds &&
          s.spread < budget.target_spread) {
        break;
      }
      if (n >= kMinRuns && Since(t0) > budget.max_seconds) break;
    }
    s.p50_ms = Quantile(ms, 0.5);
    s.spread = s.p50_ms > 0 ? (Quantile(ms, 0.75) - Quantile(ms, 0.25)) / s.p50_ms : 0;
    s.p90_ms = Quantile(ms, 0.9);
    s.p99_ms = Quantile(ms, 0.99);
    double sum = 0;
    for (double v : ms) sum += v;
    s.mean_ms = sum / static_cast<double>(ms.size());
    s.min_ms = Quantile(ms, 0);
    s.runs = static_cast<int>(ms.size());
    s.seconds = Since(t_all);
    s.timer = graph ? "cuda_graph" : (timer ? "cuda_events" : "steady_clock");
    return s;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("latency benchmark (", spec.precision, ", batch ",
                                            spec.batch, ", ", device.str(),
                                            "): ", e.what_without_backtrace()));
  }
}

void RegisterTorchLatencyRuntimes() {
  static absl::once_flag once;
  absl::call_once(once, [] {
    auto& r = WorkerLatencyRuntimes();
    const auto any_device = [](const std::string&) { return true; };
    const auto gpu = [](const std::string& device) { return device.rfind("cuda", 0) == 0; };
    // One line per runtime: its name (core/latency_runtimes.cc), where it runs, what it does.
    r.AddBuiltin({"libtorch", any_device,
                  [](const v1::Architecture& arch, const v1::HardwareTarget& target,
                     const MeasureContext& ctx) {
                    return MeasureArchitecture(arch, ctx.device, LatencySpecOf(target), ctx.budget,
                                               ctx.seed);
                  }});
    r.AddBuiltin({"libtorch-cuda-graph", gpu,
                  [](const v1::Architecture& arch, const v1::HardwareTarget& target,
                     const MeasureContext& ctx) {
                    LatencySpec spec = LatencySpecOf(target);
                    spec.cuda_graph = true;
                    return MeasureArchitecture(arch, ctx.device, spec, ctx.budget, ctx.seed);
                  }});
  });
}

}  // namespace nasforge
