// Training benchmark: trains candidates with the worker's trainer and prints, per candidate,
// MACs, validation/test accuracy, training images/s and wall time.
//   train_bench --spec JOB.yaml [--n 3] [--threads 1] [--device cpu|cuda] [--autocast bf16]
//               [--channels_last]       the first n samples of the spec's space
//   train_bench --spec JOB.yaml --n 8 --int8 8
//       and each trained candidate quantized to int8 (8 calibration batches): fp32 and int8
//       validation/test accuracy and size side by side (issue #30)
//   train_bench --spec JOB.yaml --n 6 --prune 0.5 [--prune_epochs 3]
//       and each trained candidate pruned (half the channels by L1 norm, the widths rewritten)
//       and fine-tuned (default a third of the epochs): accuracy before and after fine-tuning,
//       MACs and measured fp32 latency (batch 1, --threads) beside the parent's (issue #30)
//   train_bench --spec JOB.yaml --n 3 --distill 0.5 [--distill_seeds 3]
//       and then each candidate but the most accurate trained again from scratch, with that one
//       as its teacher (alpha 0.5, T 4) and without (the control), on the same seeds: mean
//       validation and test accuracy of both and the gain (issue #30)
//   train_bench --spec JOB.yaml --arch ARCH.json --json
//       one architecture (canonical JSON, as `nasforge export` writes it) with the spec's
//       recipe; one JSON line per epoch ({"epoch", "images_per_second", ...}) for
//       bench/train_compare.py, which trains the same model in PyTorch.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/compression.h"
#include "core/cost.h"
#include "core/jobspec.h"
#include "core/pareto.h"
#include "core/search_space.h"
#include "google/protobuf/util/json_util.h"
#include "worker/process_tuning.h"
#include "worker/trainer.h"

ABSL_FLAG(std::string, spec, "", "job spec YAML: space, training recipe, epochs");
ABSL_FLAG(std::string, arch, "", "train this architecture (JSON) instead of samples");
ABSL_FLAG(int, n, 3, "candidates");
ABSL_FLAG(int, threads, 1, "LibTorch threads");
ABSL_FLAG(int, epochs, 0, "epochs (0: the spec's)");
ABSL_FLAG(int, train_examples, -1, "override training.train_examples");
ABSL_FLAG(int, batch_size, 0, "override training.batch_size");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda, cuda:N");
ABSL_FLAG(std::string, autocast, "", "bf16 (CUDA)");
ABSL_FLAG(bool, channels_last, false, "NHWC");
ABSL_FLAG(bool, tune_malloc, true, "keep the heap across steps (as the worker does)");
ABSL_FLAG(bool, json, false, "JSON lines per epoch");
ABSL_FLAG(std::string, dump_archs, "",
          "write the n sampled architectures' canonical JSON to DIR/<i>.json and exit");
ABSL_FLAG(int, int8, 0,
          "after training, quantize each candidate to int8 (post-training, this many calibration "
          "batches) and print its accuracy beside the fp32 network's");
ABSL_FLAG(double, prune, 0,
          "after training, prune each candidate at this ratio of channels and fine-tune it");
ABSL_FLAG(int, prune_epochs, 0, "fine-tuning epochs after pruning (0: a third of the epochs)");
ABSL_FLAG(double, prune_lr_scale, 1.0, "fine-tuning learning rate as a multiple of the spec's");
ABSL_FLAG(double, prune_distill, 0,
          "fine-tune the pruned network distilled from its parent with this alpha (T 4); 0: no");
ABSL_FLAG(double, distill, 0,
          "after training, distill every candidate from the most accurate one (this alpha, T 4) "
          "and compare with its control");
ABSL_FLAG(int, distill_seeds, 3, "seeds per distilled student and control");
ABSL_FLAG(std::string, data_dir, "/usr/share/datasets/fashion-mnist", "IDX files");

namespace {

std::string Read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Prunes a trained candidate, fine-tunes the copy and prints the columns --prune adds.
bool PrintPruned(nasforge::Trainer& trainer, const nasforge::TrainRequest& parent,
                 const nasforge::TrainResult& trained, double ratio, int epochs) {
  auto child = nasforge::PrunedArchitecture(parent.architecture, ratio);
  if (!child.ok()) {
    std::printf(" (not pruned: %s)", std::string(child.status().message()).c_str());
    return true;
  }
  nasforge::PruneRequest p;
  p.parent_architecture = parent.architecture;
  p.architecture = *child;
  p.training = parent.training;
  p.weights = trained.weights;
  p.seed = parent.seed;
  p.split_seed = parent.split_seed;
  auto cut = trainer.Prune(p);
  if (!cut.ok()) {
    std::fprintf(stderr, "\nprune: %s\n", std::string(cut.status().message()).c_str());
    return false;
  }
  nasforge::TrainRequest tune = parent;
  tune.architecture = *child;
  tune.initial_weights = cut->weights;
  const int tune_epochs = absl::GetFlag(FLAGS_prune_epochs);
  tune.epochs = tune_epochs > 0 ? tune_epochs : std::max(1, epochs / 3);
  tune.training.set_learning_rate(tune.training.learning_rate() *
                                  absl::GetFlag(FLAGS_prune_lr_scale));
  if (const double alpha = absl::GetFlag(FLAGS_prune_distill); alpha > 0) {
    tune.teacher = nasforge::TrainRequest::Teacher{parent.architecture, trained.weights, alpha, 4};
  }
  std::atomic<bool> abort{false};
  auto tuned = trainer.Train(
      tune, [](const nasforge::EpochReport&) { return nasforge::Verdict::kContinue; }, abort);
  if (!tuned.ok()) {
    std::fprintf(stderr, "\nfine-tune: %s\n", std::string(tuned.status().message()).c_str());
    return false;
  }
  const auto &m = tuned->metrics, &pm = trained.metrics;
  std::printf(" %-8.4f %-8.4f %-8.4f %-8.2f %-8.4f %-10.0f %-10.3f %-7.4f %-7.3f",
              cut->metrics.at("cut_accuracy"), cut->metrics.at("pruned_accuracy"), m.at("accuracy"),
              100 * (pm.at("accuracy") - m.at("accuracy")), m.at("test_accuracy"), m.at("macs"),
              m.at("macs") / pm.at("macs"), m.at("latency_ms"),
              m.at("latency_ms") / pm.at("latency_ms"));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
  }
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_tune_malloc)) nasforge::KeepHeapAcrossSteps();
  auto spec = nasforge::ParseJobSpecYaml(Read(absl::GetFlag(FLAGS_spec)));
  if (!spec.ok()) {
    std::fprintf(stderr, "--spec: %s\n", std::string(spec.status().message()).c_str());
    return 2;
  }
  nasforge::TorchTrainerOptions o;
  o.threads = absl::GetFlag(FLAGS_threads);
  o.device = absl::GetFlag(FLAGS_device);
  o.autocast = absl::GetFlag(FLAGS_autocast);
  o.channels_last = absl::GetFlag(FLAGS_channels_last);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  const int int8 = absl::GetFlag(FLAGS_int8);
  const double prune = absl::GetFlag(FLAGS_prune);
  const double distill = absl::GetFlag(FLAGS_distill);
  o.keep_weights = int8 > 0 || prune > 0 || distill > 0;
  auto made = nasforge::NewTorchTrainer(o);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", std::string(made.status().message()).c_str());
    return 2;
  }
  auto trainer = std::move(*made);
  nasforge::v1::Training training = spec->training();
  if (absl::GetFlag(FLAGS_train_examples) >= 0) {
    training.set_train_examples(absl::GetFlag(FLAGS_train_examples));
  }
  if (absl::GetFlag(FLAGS_batch_size) > 0) training.set_batch_size(absl::GetFlag(FLAGS_batch_size));
  const int epochs =
      absl::GetFlag(FLAGS_epochs) > 0 ? absl::GetFlag(FLAGS_epochs) : spec->budget().epochs();
  const bool json = absl::GetFlag(FLAGS_json);

  std::vector<nasforge::v1::Architecture> archs;
  if (!absl::GetFlag(FLAGS_arch).empty()) {
    nasforge::v1::Architecture a;
    auto st = google::protobuf::util::JsonStringToMessage(Read(absl::GetFlag(FLAGS_arch)), &a);
    if (!st.ok()) {
      std::fprintf(stderr, "--arch: %s\n", st.ToString().c_str());
      return 2;
    }
    archs.push_back(a);
  } else {
    std::vector<nasforge::v1::Constraint> bounds;
    for (const auto& c : spec->constraints()) {
      if (c.metric() == "macs" || c.metric() == "params") bounds.push_back(c);
    }
    for (uint64_t i = 0; static_cast<int>(archs.size()) < absl::GetFlag(FLAGS_n); ++i) {
      auto arch = nasforge::SampleArchitecture(spec->search_space(),
                                               nasforge::MixSeed(spec->budget().seed(), i));
      auto cost = nasforge::ComputeCost(arch);
      nasforge::MetricMap m{{"macs", double(cost.macs)}, {"params", double(cost.params)}};
      if (nasforge::MeetsConstraints(m, bounds)) archs.push_back(arch);
    }
  }
  if (std::string dir = absl::GetFlag(FLAGS_dump_archs); !dir.empty()) {
    for (size_t i = 0; i < archs.size(); ++i) {
      std::ofstream(dir + "/" + std::to_string(i) + ".json")
          << nasforge::CanonicalEncoding(archs[i]);
    }
    return 0;
  }
  if (!json) {
    std::printf("%-4s %-10s %-8s %-8s %-10s %-8s", "i", "macs", "val_acc", "test_acc", "img/s",
                "wall_s");
    if (int8 > 0) {
      std::printf(" %-9s %-9s %-9s %-9s %-10s %-10s %-9s %-9s %-9s %-7s", "f32_val", "int8_val",
                  "f32_test", "int8_test", "f32_bytes", "int8_bytes", "engine_v", "f32_ms",
                  "int8_ms", "int8_s");
    }
    if (prune > 0) {
      std::printf(" %-8s %-8s %-8s %-8s %-8s %-10s %-10s %-7s %-7s", "cut_val", "recal", "tuned",
                  "drop_pt", "tuned_t", "macs", "macs_x", "lat_ms", "lat_x");
    }
    std::printf("\n");
  }
  std::atomic<bool> abort{false};
  int best = -1;  // --distill: the teacher
  double best_accuracy = 0;
  std::string teacher_weights;
  for (size_t i = 0; i < archs.size(); ++i) {
    nasforge::TrainRequest req;
    req.architecture = archs[i];
    req.training = training;
    req.epochs = epochs;
    req.seed = i;
    req.split_seed = spec->budget().seed();
    auto t0 = std::chrono::steady_clock::now();
    auto r = trainer->Train(
        req,
        [&](const nasforge::EpochReport& e) {
          if (json) {
            std::printf(
                "{\"epoch\":%d,\"images_per_second\":%.1f,\"seconds\":%.4f,\"images\":%lld,"
                "\"train_loss\":%.5f,\"validation_accuracy\":%.5f}\n",
                e.epoch, e.images_per_second, e.seconds, static_cast<long long>(e.images),
                e.train_loss, e.validation_accuracy);
            std::fflush(stdout);
          }
          return nasforge::Verdict::kContinue;
        },
        abort);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      std::fprintf(stderr, "%zu: %s\n", i, std::string(r.status().message()).c_str());
      return 1;
    }
    if (json) {
      std::printf("{\"done\":true,\"test_accuracy\":%.5f,\"params\":%.0f,\"wall_seconds\":%.3f}\n",
                  r->metrics.at("test_accuracy"), r->metrics.at("params"), wall);
    } else {
      std::printf("%-4zu %-10.0f %-8.4f %-8.4f %-10.0f %-8.1f", i, r->metrics.at("macs"),
                  r->metrics.at("accuracy"), r->metrics.at("test_accuracy"),
                  r->metrics.at("images_per_second"), wall);
      if (int8 > 0) {
        nasforge::QuantizeRequest q;
        q.architecture = archs[i];
        q.training = training;
        q.weights = r->weights;
        q.calibration_batches = int8;
        q.seed = i;
        q.split_seed = req.split_seed;
        auto q0 = std::chrono::steady_clock::now();
        auto qr = trainer->Quantize(q);
        if (!qr.ok()) {
          std::fprintf(stderr, "\n%zu: int8: %s\n", i, std::string(qr.status().message()).c_str());
          return 1;
        }
        const auto& m = qr->metrics;
        const auto or_nan = [&](const char* k) {
          auto it = m.find(k);
          return it == m.end() ? std::nan("") : it->second;
        };
        std::printf(" %-9.4f %-9.4f %-9.4f %-9.4f %-10.0f %-10.0f %-9.4f %-9.4f %-9.4f %-7.1f",
                    m.at("fp32_accuracy"), m.at("accuracy"), m.at("fp32_test_accuracy"),
                    m.at("test_accuracy"), m.at("fp32_size_bytes"), m.at("size_bytes"),
                    or_nan("int8_engine_accuracy"), or_nan("fp32_latency_ms"), or_nan("latency_ms"),
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - q0).count());
      }
      if (prune > 0 && !PrintPruned(*trainer, req, *r, prune, epochs)) return 1;
      std::printf("\n");
    }
    std::fflush(stdout);
    if (distill > 0 && (best < 0 || r->metrics.at("accuracy") > best_accuracy)) {
      best = static_cast<int>(i);
      best_accuracy = r->metrics.at("accuracy");
      teacher_weights = r->weights;
    }
  }
  if (distill > 0 && !json) {
    std::printf("\nteacher: candidate %d (val %.4f); alpha %.2f, T 4, %d epochs, %d seeds\n", best,
                best_accuracy, distill, epochs, absl::GetFlag(FLAGS_distill_seeds));
    std::printf("%-4s %-10s %-9s %-9s %-9s %-9s %-8s %-8s\n", "i", "macs", "ctrl_val", "kd_val",
                "ctrl_test", "kd_test", "gain_pt", "gain_t");
    for (size_t i = 0; i < archs.size(); ++i) {
      if (static_cast<int>(i) == best) continue;
      double sums[4] = {0, 0, 0, 0};
      const int seeds = absl::GetFlag(FLAGS_distill_seeds);
      for (int s = 0; s < seeds; ++s) {
        nasforge::TrainRequest req;
        req.architecture = archs[i];
        req.training = training;
        req.epochs = epochs;
        req.seed = 1000 + s;
        req.split_seed = spec->budget().seed();
        const auto go_on = [](const nasforge::EpochReport&) {
          return nasforge::Verdict::kContinue;
        };
        auto control = trainer->Train(req, go_on, abort);
        req.teacher = nasforge::TrainRequest::Teacher{archs[best], teacher_weights, distill, 4};
        auto taught = trainer->Train(req, go_on, abort);
        if (!control.ok() || !taught.ok()) {
          std::fprintf(
              stderr, "%zu: %s\n", i,
              std::string((control.ok() ? taught.status() : control.status()).message()).c_str());
          return 1;
        }
        sums[0] += control->metrics.at("accuracy");
        sums[1] += taught->metrics.at("accuracy");
        sums[2] += control->metrics.at("test_accuracy");
        sums[3] += taught->metrics.at("test_accuracy");
      }
      for (double& v : sums) v /= seeds;
      std::printf("%-4zu %-10.0f %-9.4f %-9.4f %-9.4f %-9.4f %-8.2f %-8.2f\n", i,
                  static_cast<double>(nasforge::ComputeCost(archs[i]).macs), sums[0], sums[1],
                  sums[2], sums[3], 100 * (sums[1] - sums[0]), 100 * (sums[3] - sums[2]));
      std::fflush(stdout);
    }
  }
  return 0;
}
