// Training benchmark: trains the first N samples of a job spec's search space with the spec's
// training recipe on one process and prints, per candidate, MACs, validation/test accuracy,
// training images/s and wall time.
//   OPENBLAS_NUM_THREADS=1 build/bench/train_bench JOB.yaml [N] [THREADS]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/cost.h"
#include "core/jobspec.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "worker/trainer.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: train_bench JOB.yaml [N] [THREADS]\n");
    return 2;
  }
  std::ifstream f(argv[1]);
  std::stringstream ss;
  ss << f.rdbuf();
  auto spec = nasforge::ParseJobSpecYaml(ss.str());
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
    return 2;
  }
  int n = argc > 2 ? std::atoi(argv[2]) : 3;
  nasforge::TorchTrainerOptions o;
  o.threads = argc > 3 ? std::atoi(argv[3]) : 1;
  auto trainer = nasforge::NewTorchTrainer(o).value();
  std::vector<nasforge::v1::Constraint> bounds;
  for (const auto& c : spec->constraints()) {
    if (c.metric() == "macs" || c.metric() == "params") bounds.push_back(c);
  }
  std::printf("%-4s %-10s %-8s %-8s %-10s %-8s\n", "i", "macs", "val_acc", "test_acc", "img/s",
              "wall_s");
  std::atomic<bool> abort{false};
  int done = 0;
  for (uint64_t i = 0; done < n; ++i) {
    auto arch = nasforge::SampleArchitecture(spec->search_space(),
                                             nasforge::MixSeed(spec->budget().seed(), i));
    auto cost = nasforge::ComputeCost(arch);
    nasforge::MetricMap m{{"macs", double(cost.macs)}, {"params", double(cost.params)}};
    if (!nasforge::MeetsConstraints(m, bounds)) continue;
    nasforge::TrainRequest req;
    req.architecture = arch;
    req.training = spec->training();
    req.epochs = spec->budget().epochs();
    req.seed = i;
    req.split_seed = spec->budget().seed();
    auto t0 = std::chrono::steady_clock::now();
    auto r = trainer->Train(
        req, [](const nasforge::EpochReport&) { return nasforge::Verdict::kContinue; }, abort);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      std::printf("%-4llu error: %s\n", (unsigned long long)i,
                  std::string(r.status().message()).c_str());
      continue;
    }
    std::printf("%-4llu %-10lld %-8.4f %-8.4f %-10.0f %-8.1f\n", (unsigned long long)i,
                (long long)cost.macs, r->metrics.at("accuracy"), r->metrics.at("test_accuracy"),
                r->metrics.at("images_per_second"), wall);
    std::fflush(stdout);
    ++done;
  }
  return 0;
}
