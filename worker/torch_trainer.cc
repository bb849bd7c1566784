// The training loop, the module-based cost check and the latency benchmark (the builders are in
// torch_models.cc).
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/cost.h"
#include "core/log.h"
#include "core/search_space.h"
#include "core/status.h"
#include "worker/dataset.h"
#include "worker/torch_models.h"
#include "worker/trainer.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

using Net = std::shared_ptr<NetImpl>;

// A zero input of the architecture's shape, batch 1.
torch::Tensor ExampleInput(const v1::Architecture& arch, int64_t batch = 1) {
  InputShape in = ArchInputShape(arch);
  if (arch.has_mlp()) return torch::zeros({batch, in.channels});
  return torch::zeros({batch, in.channels, in.height, in.width});
}

// Peak RSS of this process since the last reset (VmHWM), in bytes.
void ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}
double PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return 1024.0 * std::stod(line.substr(6));
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return 1024.0 * u.ru_maxrss;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * (v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

struct Split {
  torch::Tensor x, y;
};

class TorchTrainer final : public Trainer {
 public:
  explicit TorchTrainer(TorchTrainerOptions o) : o_(std::move(o)) {
    static std::once_flag once;
    std::call_once(once, [&] {
      torch::set_num_threads(std::max(1, o_.threads));
      try {
        at::set_num_interop_threads(1);
      } catch (const c10::Error&) {
      }
    });
  }

  absl::StatusOr<TrainResult> Train(const TrainRequest& req,
                                    const std::function<Verdict(const EpochReport&)>& on_epoch,
                                    const std::atomic<bool>& abort) override {
    try {
      return TrainImpl(req, on_epoch, abort);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("training failed: ", e.what()));
    }
  }

 private:
  absl::Status LoadData(const v1::Training& t) {
    if (loaded_ == t.dataset()) return absl::OkStatus();
    ImageSet train, test;
    if (t.dataset() == "tabular") {
      return absl::FailedPreconditionError(
          "training.dataset 'tabular' is answered by --backend tabular workers, not by training");
    }
    if (t.dataset() == "synthetic") {
      train = MakeSynthetic(8000, 28, 10, 1);
      test = MakeSynthetic(2000, 28, 10, 2);
    } else {
      auto tr = ReadIdxSplit(o_.data_dir, "train");
      if (!tr.ok()) return tr.status();
      auto te = ReadIdxSplit(o_.data_dir, "test");
      if (!te.ok()) return te.status();
      train = std::move(*tr);
      test = std::move(*te);
    }
    train_ = ToTensors(train);
    test_ = ToTensors(test);
    loaded_ = t.dataset();
    Log(LogLevel::kInfo, "data_loaded",
        {{"dataset", loaded_},
         {"train", train.count},
         {"test", test.count},
         {"dir", t.dataset() == "synthetic" ? "-" : o_.data_dir}});
    return absl::OkStatus();
  }

  static Split ToTensors(const ImageSet& s) {
    auto x = torch::from_blob(const_cast<uint8_t*>(s.pixels.data()),
                              {s.count, s.channels, s.height, s.width}, torch::kUInt8)
                 .to(torch::kFloat32)
                 .div_(255.0)
                 .sub_(0.2860)
                 .div_(0.3530);  // Fashion-MNIST mean/std
    auto y = torch::from_blob(const_cast<uint8_t*>(s.labels.data()), {s.count}, torch::kUInt8)
                 .to(torch::kInt64);
    return {x, y};
  }

  // Images resized (bilinear) to the architecture's resolution when it differs from the data's.
  static torch::Tensor Fit(const torch::Tensor& x, int64_t size) {
    if (size <= 0 || x.dim() != 4 || x.size(2) == size) return x;
    return torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{size, size})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false));
  }

  static double Accuracy(const Net& net, const torch::Tensor& x, const torch::Tensor& y,
                         int64_t size) {
    torch::NoGradGuard ng;
    net->eval();
    int64_t correct = 0;
    for (int64_t i = 0; i < x.size(0); i += 1000) {
      int64_t e = std::min<int64_t>(i + 1000, x.size(0));
      auto pred = net->forward(Fit(x.slice(0, i, e), size)).argmax(1);
      correct += pred.eq(y.slice(0, i, e)).sum().item<int64_t>();
    }
    return x.size(0) == 0 ? 0.0 : static_cast<double>(correct) / x.size(0);
  }

  void Latency(const Net& net, const v1::Architecture& a, std::map<std::string, double>* m) {
    torch::NoGradGuard ng;
    net->eval();
    auto x = torch::randn_like(ExampleInput(a));
    for (int i = 0; i < o_.latency_warmup; ++i) net->forward(x);
    std::vector<double> ms;
    auto t0 = Clock::now();
    double spread = 1e9;
    while (static_cast<int>(ms.size()) < o_.latency_max_runs) {
      for (int i = 0; i < 10; ++i) {
        auto s = Clock::now();
        net->forward(x);
        ms.push_back(1e3 * Since(s));
      }
      double med = Percentile(ms, 0.5);
      spread = (Percentile(ms, 0.75) - Percentile(ms, 0.25)) / med;
      if ((ms.size() >= 30 && spread < o_.latency_target_spread) ||
          Since(t0) > o_.latency_max_seconds) {
        break;
      }
    }
    (*m)["latency_ms"] = Percentile(ms, 0.5);
    (*m)["latency_p90_ms"] = Percentile(ms, 0.9);
    (*m)["latency_p99_ms"] = Percentile(ms, 0.99);
    (*m)["latency_spread"] = spread;
    (*m)["latency_runs"] = static_cast<double>(ms.size());
  }

  absl::StatusOr<TrainResult> TrainImpl(const TrainRequest& req,
                                        const std::function<Verdict(const EpochReport&)>& on_epoch,
                                        const std::atomic<bool>& abort) {
    NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture, "architecture"));
    const v1::Architecture& a = req.architecture;
    const auto& t = req.training;
    NF_RETURN_IF_ERROR(LoadData(t));
    const InputShape in = ArchInputShape(a);
    const bool fits =
        a.has_mlp() ? in.channels == train_.x[0].numel() : in.channels == train_.x.size(1);
    const int64_t size = a.has_mlp() ? 0 : in.height;
    if (!fits) {
      return absl::InvalidArgumentError(
          absl::StrCat("architecture expects ", in.channels, "x", in.height, "x", in.width,
                       " inputs but the data set has ", train_.x.size(1), "x", train_.x.size(2),
                       "x", train_.x.size(3)));
    }
    ResetPeakRss();
    torch::manual_seed(req.seed);
    Net net = BuildNet(a);

    // The analytic cost model and the built module must agree exactly.
    ArchCost analytic = ComputeCost(a);
    NetCount counted = CountNet(*net, ExampleInput(a));
    const int64_t params = counted.params, macs = counted.macs;
    if (params != analytic.params || macs != analytic.macs) {
      return absl::InternalError(absl::StrCat(
          "cost model disagrees with the built module: analytic params=", analytic.params,
          " macs=", analytic.macs, ", module params=", params, " macs=", macs,
          " (a bug in core/cost.cc or the builder)"));
    }

    std::vector<int> train_idx, val_idx;
    SplitIndices(static_cast<int>(train_.x.size(0)), t.train_examples(), t.validation_examples(),
                 req.split_seed, &train_idx, &val_idx);
    auto to_tensor = [](const std::vector<int>& v) {
      return torch::from_blob(const_cast<int*>(v.data()), {static_cast<int64_t>(v.size())},
                              torch::kInt32)
          .to(torch::kInt64);
    };
    torch::Tensor tr_i = to_tensor(train_idx), va_i = to_tensor(val_idx);
    torch::Tensor val_x = train_.x.index_select(0, va_i), val_y = train_.y.index_select(0, va_i);

    torch::optim::AdamW opt(
        net->parameters(),
        torch::optim::AdamWOptions(t.learning_rate()).weight_decay(t.weight_decay()));
    const int64_t n = tr_i.size(0);
    const int64_t steps_per_epoch = (n + t.batch_size() - 1) / t.batch_size();
    const int64_t total_steps = steps_per_epoch * req.epochs;
    std::mt19937_64 rng(req.seed);
    TrainResult result;
    double best_val = -1, train_seconds = 0;
    int since_best = 0, epochs_run = 0;
    int64_t step = 0, images = 0;
    for (int epoch = 1; epoch <= req.epochs; ++epoch) {
      auto t0 = Clock::now();
      net->train();
      torch::Tensor perm =
          tr_i.index_select(0, torch::randperm(n, torch::TensorOptions().dtype(torch::kInt64)));
      double loss_sum = 0;
      int64_t batches = 0;
      for (int64_t i = 0; i < n; i += t.batch_size()) {
        if (abort.load()) return absl::AbortedError("training aborted");
        // One-cycle-free cosine decay: robust across architectures without tuning.
        double lr = t.learning_rate() * 0.5 *
                    (1 + std::cos(M_PI * static_cast<double>(step) / total_steps));
        for (auto& g : opt.param_groups()) {
          static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
        }
        auto idx = perm.slice(0, i, std::min(i + t.batch_size(), n));
        auto x = train_.x.index_select(0, idx);
        auto y = train_.y.index_select(0, idx);
        opt.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(net->forward(Fit(x, size)), y);
        loss.backward();
        opt.step();
        loss_sum += loss.item<double>();
        ++batches;
        ++step;
        images += idx.size(0);
      }
      double secs = Since(t0);
      train_seconds += secs;
      EpochReport r;
      r.epoch = epoch;
      r.train_loss = loss_sum / std::max<int64_t>(1, batches);
      r.validation_accuracy = Accuracy(net, val_x, val_y, size);
      r.seconds = secs;
      r.images = n;
      r.images_per_second = n / std::max(secs, 1e-9);
      ++epochs_run;
      if (r.validation_accuracy > best_val) {
        best_val = r.validation_accuracy;
        since_best = 0;
      } else {
        ++since_best;
      }
      Verdict v = on_epoch(r);
      if (v == Verdict::kAbort) return absl::AbortedError("training aborted by the controller");
      bool patience_hit = t.patience() > 0 && since_best >= t.patience();
      if ((v == Verdict::kStop || patience_hit) && epoch < req.epochs) {
        result.stopped_early = true;
        break;
      }
    }
    auto& m = result.metrics;
    m["accuracy"] = best_val;
    torch::Tensor test_x = test_.x, test_y = test_.y;
    if (t.test_examples() > 0 && t.test_examples() < test_x.size(0)) {
      test_x = test_x.slice(0, 0, t.test_examples());
      test_y = test_y.slice(0, 0, t.test_examples());
    }
    m["test_accuracy"] = Accuracy(net, test_x, test_y, size);
    m["macs"] = static_cast<double>(macs);
    m["params"] = static_cast<double>(params);
    m["train_seconds"] = train_seconds;
    m["images_per_second"] = images / std::max(train_seconds, 1e-9);
    m["epochs"] = epochs_run;
    const auto latency_start = Clock::now();
    Latency(net, a, &m);
    result.latency_measure_seconds = Since(latency_start);
    m["peak_memory_bytes"] = PeakRssBytes();
    return result;
  }

  TorchTrainerOptions o_;
  std::string loaded_;
  Split train_, test_;
};

}  // namespace

std::unique_ptr<Trainer> NewTorchTrainer(const TorchTrainerOptions& options) {
  return std::make_unique<TorchTrainer>(options);
}

absl::StatusOr<BuiltModelCount> CountBuiltModel(const v1::Architecture& arch, int batch) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, "architecture"));
  try {
    Net net = BuildNet(arch);
    NetCount n = CountNet(*net, ExampleInput(arch, batch));
    return BuiltModelCount{n.params, n.macs, n.output_shape};
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  }
}

}  // namespace nasforge
