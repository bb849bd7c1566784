// The only translation unit that includes LibTorch: the MBConv builder, the training loop, the
// module-based cost count and the latency benchmark.
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
#include "worker/trainer.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

torch::Tensor Act(const torch::Tensor& x, const std::string& a) {
  if (a == "relu") return torch::relu(x);
  if (a == "relu6") return torch::hardtanh(x, 0.0, 6.0);
  return torch::silu(x);
}

// A conv that remembers its last output size, so MACs can be counted from the built module.
struct CountedConvImpl : torch::nn::Module {
  CountedConvImpl(int in, int out, int k, int stride, int groups, bool bias) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                                                         .stride(stride)
                                                         .padding(k / 2)
                                                         .groups(groups)
                                                         .bias(bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv->forward(x);
    out_hw = y.size(2) * y.size(3);
    return y;
  }
  torch::nn::Conv2d conv{nullptr};
  int64_t out_hw = 0;
};
TORCH_MODULE(CountedConv);

struct MBConvBlockImpl : torch::nn::Module {
  MBConvBlockImpl(int in, const v1::MBConvStage& st, int stride, std::string act)
      : act(std::move(act)) {
    int hidden = in * st.expansion();
    if (st.expansion() != 1) {
      expand = register_module("expand", CountedConv(in, hidden, 1, 1, 1, false));
      expand_bn = register_module("expand_bn", torch::nn::BatchNorm2d(hidden));
    }
    depthwise = register_module("depthwise",
                                CountedConv(hidden, hidden, st.kernel(), stride, hidden, false));
    depthwise_bn = register_module("depthwise_bn", torch::nn::BatchNorm2d(hidden));
    if (st.se_ratio() > 0) {
      int sq = SqueezeChannels(in, st.se_ratio());
      se_reduce = register_module("se_reduce", CountedConv(hidden, sq, 1, 1, 1, true));
      se_expand = register_module("se_expand", CountedConv(sq, hidden, 1, 1, 1, true));
    }
    project = register_module("project", CountedConv(hidden, st.channels(), 1, 1, 1, false));
    project_bn = register_module("project_bn", torch::nn::BatchNorm2d(st.channels()));
    residual = stride == 1 && in == st.channels();
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor h = x;
    if (!expand.is_empty()) h = Act(expand_bn->forward(expand->forward(h)), act);
    h = Act(depthwise_bn->forward(depthwise->forward(h)), act);
    if (!se_reduce.is_empty()) {
      auto s = torch::adaptive_avg_pool2d(h, {1, 1});
      s = torch::sigmoid(se_expand->forward(Act(se_reduce->forward(s), act)));
      h = h * s;
    }
    h = project_bn->forward(project->forward(h));
    return residual ? h + x : h;
  }
  std::string act;
  CountedConv expand{nullptr}, depthwise{nullptr}, se_reduce{nullptr}, se_expand{nullptr},
      project{nullptr};
  torch::nn::BatchNorm2d expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
  bool residual = false;
};
TORCH_MODULE(MBConvBlock);

struct MBConvNetImpl : torch::nn::Module {
  explicit MBConvNetImpl(const v1::MBConvArch& a) : act(a.activation()) {
    int stem_stride = a.stem_stride() == 0 ? 1 : a.stem_stride();
    stem = register_module(
        "stem", CountedConv(a.in_channels(), a.stem_channels(), 3, stem_stride, 1, false));
    stem_bn = register_module("stem_bn", torch::nn::BatchNorm2d(a.stem_channels()));
    blocks = register_module("blocks", torch::nn::Sequential());
    int c = a.stem_channels();
    for (const auto& st : a.stages()) {
      for (int b = 0; b < st.repeats(); ++b) {
        blocks->push_back(MBConvBlock(c, st, b == 0 ? st.stride() : 1, act));
        c = st.channels();
      }
    }
    if (a.head_channels() > 0) {
      head = register_module("head", CountedConv(c, a.head_channels(), 1, 1, 1, false));
      head_bn = register_module("head_bn", torch::nn::BatchNorm2d(a.head_channels()));
      c = a.head_channels();
    }
    dropout = register_module("dropout", torch::nn::Dropout(a.dropout()));
    classifier = register_module("classifier", torch::nn::Linear(c, a.num_classes()));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = Act(stem_bn->forward(stem->forward(x)), act);
    x = blocks->forward(x);
    if (!head.is_empty()) x = Act(head_bn->forward(head->forward(x)), act);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return classifier->forward(dropout->forward(x));
  }
  std::string act;
  CountedConv stem{nullptr}, head{nullptr};
  torch::nn::BatchNorm2d stem_bn{nullptr}, head_bn{nullptr};
  torch::nn::Sequential blocks{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(MBConvNet);

std::pair<int64_t, int64_t> CountModule(MBConvNet& net, const v1::MBConvArch& a) {
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  net->eval();
  {
    torch::NoGradGuard ng;
    net->forward(torch::zeros({1, a.in_channels(), a.resolution(), a.resolution()}));
  }
  int64_t macs = 0;
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (auto c = std::dynamic_pointer_cast<CountedConvImpl>(m)) {
      macs += c->conv->weight.numel() * c->out_hw;
    } else if (auto l = std::dynamic_pointer_cast<torch::nn::LinearImpl>(m)) {
      macs += l->weight.numel();
    }
  }
  return {params, macs};
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

  static double Accuracy(MBConvNet& net, const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard ng;
    net->eval();
    int64_t correct = 0;
    for (int64_t i = 0; i < x.size(0); i += 1000) {
      int64_t e = std::min<int64_t>(i + 1000, x.size(0));
      auto pred = net->forward(x.slice(0, i, e)).argmax(1);
      correct += pred.eq(y.slice(0, i, e)).sum().item<int64_t>();
    }
    return x.size(0) == 0 ? 0.0 : static_cast<double>(correct) / x.size(0);
  }

  void Latency(MBConvNet& net, const v1::MBConvArch& a, std::map<std::string, double>* m) {
    torch::NoGradGuard ng;
    net->eval();
    auto x = torch::randn({1, a.in_channels(), a.resolution(), a.resolution()});
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
    const auto& a = req.architecture.mbconv();
    const auto& t = req.training;
    NF_RETURN_IF_ERROR(LoadData(t));
    if (a.in_channels() != train_.x.size(1) || a.resolution() != train_.x.size(2)) {
      return absl::InvalidArgumentError(
          absl::StrCat("architecture expects ", a.in_channels(), "x", a.resolution(), "x",
                       a.resolution(), " inputs but the data set has ", train_.x.size(1), "x",
                       train_.x.size(2), "x", train_.x.size(3)));
    }
    ResetPeakRss();
    torch::manual_seed(req.seed);
    MBConvNet net(a);

    // The analytic cost model and the built module must agree exactly.
    ArchCost analytic = ComputeCost(req.architecture);
    auto [params, macs] = CountModule(net, a);
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
        auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
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
      r.validation_accuracy = Accuracy(net, val_x, val_y);
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
    m["test_accuracy"] = Accuracy(net, test_x, test_y);
    m["macs"] = static_cast<double>(macs);
    m["params"] = static_cast<double>(params);
    m["train_seconds"] = train_seconds;
    m["images_per_second"] = images / std::max(train_seconds, 1e-9);
    m["epochs"] = epochs_run;
    Latency(net, a, &m);
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

absl::StatusOr<std::pair<int64_t, int64_t>> CountBuiltModel(const v1::Architecture& arch) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, "architecture"));
  try {
    MBConvNet net(arch.mbconv());
    return CountModule(net, arch.mbconv());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  }
}

}  // namespace nasforge
