// Latency benchmark: the worker's own measurement (worker/torch_latency.cc) on reference
// architectures and on samples of a search space. Prints figures; asserts nothing.
//
//   latency_bench reference [--device cuda] [--batches 1,32,256] [--precisions fp32,bf16]
//                           [--graph] [--channels-last] [--json-dir DIR]
//     EfficientNet-B0, MobileNetV2, ResNet-18/50, ConvNeXt-T (search_spaces/reference) at each
//     batch and precision; --graph adds the CUDA-graph (launch-free) latency. With --json-dir,
//     writes each architecture's canonical JSON there and one JSON line per cell to stdout, for
//     bench/pytorch_latency.py to measure the same models with PyTorch eager.
//   latency_bench repeat --space FILE [--n 50] [--device cpu] [--batch 1] [--threads 1]
//     Repeatability: measures n sampled architectures, then all of them again, and prints the
//     p50 difference per architecture and the Kendall tau of the two rankings.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/search_space.h"
#include "worker/latency.h"
#include "worker/process_tuning.h"
#include "worker/trainer.h"

ABSL_FLAG(std::string, device, "cpu", "cpu, cuda, cuda:N");
ABSL_FLAG(std::string, batches, "1,32,256", "reference: batch sizes");
ABSL_FLAG(std::string, precisions, "fp32", "reference: fp32,bf16,fp16");
ABSL_FLAG(bool, graph, false,
          "reference: also the CUDA-graph latency; repeat: measure CUDA-graph replays");
ABSL_FLAG(bool, channels_last, false, "NHWC");
ABSL_FLAG(std::string, json_dir, "", "reference: write architectures here, JSON lines out");
ABSL_FLAG(std::string, models, "efficientnet_b0,mobilenet_v2,resnet18,resnet50,convnext_tiny",
          "reference: which of search_spaces/reference");
ABSL_FLAG(std::string, source_dir, NASFORGE_SOURCE_DIR, "the nasforge source tree");
ABSL_FLAG(std::string, space, "", "repeat: search space (or job spec) YAML");
ABSL_FLAG(int, n, 50, "repeat: architectures");
ABSL_FLAG(int, batch, 1, "repeat: batch size");
ABSL_FLAG(int, threads, 1, "CPU threads (pinned)");
ABSL_FLAG(double, max_seconds, 3.0, "timed seconds per measurement at most");
ABSL_FLAG(double, min_seconds, 0.5, "timed seconds per measurement at least");
ABSL_FLAG(int, max_runs, 300, "timed runs per measurement at most");

namespace {

using nasforge::LatencyBudget;
using nasforge::LatencySpec;
using nasforge::LatencyStats;

std::string Read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

LatencyBudget Budget() {
  LatencyBudget b;
  b.max_seconds = absl::GetFlag(FLAGS_max_seconds);
  b.min_seconds = absl::GetFlag(FLAGS_min_seconds);
  b.max_runs = absl::GetFlag(FLAGS_max_runs);
  return b;
}

int Reference() {
  const std::string device = absl::GetFlag(FLAGS_device);
  const std::string json_dir = absl::GetFlag(FLAGS_json_dir);
  std::printf("# device=%s accelerator=%s threads=%d\n", device.c_str(),
              nasforge::AcceleratorName(device).c_str(), absl::GetFlag(FLAGS_threads));
  if (json_dir.empty()) {
    std::printf("%-16s %5s %5s %10s %10s %10s %8s %10s %10s\n", "model", "batch", "prec", "p50_ms",
                "p90_ms", "p99_ms", "spread", "img/s", "graph_p50");
  }
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_models), ',')) {
    const std::string file =
        absl::GetFlag(FLAGS_source_dir) + "/search_spaces/reference/" + std::string(name) + ".yaml";
    nasforge::v1::Architecture arch;
    if (absl::Status s = nasforge::YamlToMessage(Read(file), &arch); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(), std::string(s.message()).c_str());
      return 2;
    }
    if (!json_dir.empty()) {
      std::filesystem::create_directories(json_dir);
      std::ofstream(json_dir + "/" + std::string(name) + ".json")
          << nasforge::CanonicalEncoding(arch);
    }
    for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
      for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_precisions), ',')) {
        LatencySpec spec;
        (void)absl::SimpleAtoi(b, &spec.batch);
        spec.precision = std::string(p);
        spec.channels_last = absl::GetFlag(FLAGS_channels_last);
        auto s = nasforge::MeasureArchitecture(arch, device, spec, Budget());
        if (!s.ok()) {
          std::fprintf(stderr, "%s: %s\n", std::string(name).c_str(),
                       std::string(s.status().message()).c_str());
          return 1;
        }
        double graph_p50 = NAN;
        if (absl::GetFlag(FLAGS_graph)) {
          spec.cuda_graph = true;
          auto g = nasforge::MeasureArchitecture(arch, device, spec, Budget());
          if (!g.ok()) {
            std::fprintf(stderr, "%s graph: %s\n", std::string(name).c_str(),
                         std::string(g.status().message()).c_str());
            return 1;
          }
          graph_p50 = g->p50_ms;
        }
        if (json_dir.empty()) {
          std::printf("%-16s %5d %5s %10.3f %10.3f %10.3f %8.3f %10.0f %10.3f\n",
                      std::string(name).c_str(), spec.batch, spec.precision.c_str(), s->p50_ms,
                      s->p90_ms, s->p99_ms, s->spread, 1e3 * spec.batch / s->p50_ms, graph_p50);
        } else {
          std::printf(
              "{\"model\":\"%s\",\"batch\":%d,\"precision\":\"%s\",\"p50_ms\":%.4f,"
              "\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"spread\":%.4f,\"runs\":%d,\"graph_p50_ms\":%s}\n",
              std::string(name).c_str(), spec.batch, spec.precision.c_str(), s->p50_ms, s->p90_ms,
              s->p99_ms, s->spread, s->runs,
              std::isnan(graph_p50) ? "null" : std::to_string(graph_p50).c_str());
        }
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

double KendallTau(const std::vector<double>& a, const std::vector<double>& b) {
  long concordant = 0, discordant = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = i + 1; j < a.size(); ++j) {
      double s = (a[i] - a[j]) * (b[i] - b[j]);
      if (s > 0) ++concordant;
      if (s < 0) ++discordant;
    }
  }
  long n = static_cast<long>(a.size());
  return n < 2 ? 1.0 : static_cast<double>(concordant - discordant) / (n * (n - 1) / 2.0);
}

int Repeat() {
  nasforge::v1::SearchSpace space;
  const std::string text = Read(absl::GetFlag(FLAGS_space));
  nasforge::v1::JobSpec job;
  if (nasforge::YamlToMessage(text, &job).ok() && job.has_search_space()) {
    space = job.search_space();
  } else if (absl::Status s = nasforge::YamlToMessage(text, &space); !s.ok()) {
    std::fprintf(stderr, "--space: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  const int n = absl::GetFlag(FLAGS_n);
  std::vector<nasforge::v1::Architecture> archs;
  for (uint64_t i = 0; static_cast<int>(archs.size()) < n && i < 100000; ++i) {
    auto a = nasforge::SampleArchitecture(space, nasforge::MixSeed(7, i));
    bool dup = false;
    for (const auto& b : archs) dup = dup || nasforge::ArchHash(a) == nasforge::ArchHash(b);
    if (!dup) archs.push_back(a);
  }
  LatencySpec spec;
  spec.batch = absl::GetFlag(FLAGS_batch);
  spec.channels_last = absl::GetFlag(FLAGS_channels_last);
  spec.cuda_graph = absl::GetFlag(FLAGS_graph);
  const std::string device = absl::GetFlag(FLAGS_device);
  std::vector<double> run1, run2;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < archs.size(); ++i) {
      auto s = nasforge::MeasureArchitecture(archs[i], device, spec, Budget(), i);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.status().message()).c_str());
        return 1;
      }
      (pass == 0 ? run1 : run2).push_back(s->p50_ms);
    }
  }
  std::vector<double> rel;
  int within3 = 0;
  std::printf("%-4s %-16s %10s %10s %10s %8s\n", "i", "arch", "macs", "p50_run1", "p50_run2",
              "diff%");
  for (size_t i = 0; i < archs.size(); ++i) {
    double d = std::abs(run2[i] - run1[i]) / run1[i];
    rel.push_back(d);
    within3 += d <= 0.03;
    std::printf("%-4zu %-16s %10lld %10.4f %10.4f %8.2f\n", i, nasforge::ArchHash(archs[i]).c_str(),
                static_cast<long long>(nasforge::ComputeCost(archs[i]).macs), run1[i], run2[i],
                100 * d);
  }
  std::sort(rel.begin(), rel.end());
  std::printf(
      "# %zu architectures, device=%s batch=%d threads=%d%s: p50 of run 2 within 3%% of run 1 for "
      "%d (%.0f%%), median |diff| %.2f%%, max %.2f%%; Kendall tau of the two rankings %.4f\n",
      archs.size(), device.c_str(), spec.batch, absl::GetFlag(FLAGS_threads),
      spec.cuda_graph ? " cuda_graph" : "", within3, 100.0 * within3 / archs.size(),
      100 * rel[rel.size() / 2], 100 * rel.back(), KendallTau(run1, run2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: latency_bench reference|repeat [flags] (see the source)\n");
    return 2;
  }
  nasforge::KeepHeapAcrossSteps();
  const int threads = absl::GetFlag(FLAGS_threads);
  if (absl::GetFlag(FLAGS_device) == "cpu") {
    auto pinned = nasforge::PinToCpus(threads);
    if (!pinned.ok()) {
      std::fprintf(stderr, "%s\n", std::string(pinned.status().message()).c_str());
      return 2;
    }
  }
  nasforge::SetTorchThreads(threads);
  const std::string mode = args[1];
  if (mode == "reference") return Reference();
  if (mode == "repeat") return Repeat();
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
