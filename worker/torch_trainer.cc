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
#include "core/datasets.h"
#include "core/log.h"
#include "core/recipe.h"
#include "core/search_space.h"
#include "core/status.h"
#include "worker/dataset.h"
#include "worker/torch_compress.h"
#include "worker/torch_cuda.h"
#include "worker/torch_data.h"
#include "worker/torch_export.h"
#include "worker/torch_latency.h"
#include "worker/torch_models.h"
#include "worker/torch_variants.h"
#include "worker/trainer.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

using Net = std::shared_ptr<NetImpl>;

// A zero input of the architecture's shape (for counting MACs: values do not matter).
torch::Tensor ExampleInput(const v1::Architecture& arch, int64_t batch = 1) {
  return torch::zeros(InputSizes(arch, batch));
}

// Training.augment: each image flipped left-right with probability 1/2 and shifted by up to
// `shift` pixels in each direction (edges replicated), drawn per image and step, on the device
// (one gather, no host round trip). Images only (N, C, H, W); other inputs are returned as is.
// Training.random_crop_padding / horizontal_flip: the same with `shift` pixels of zero padding
// (a random crop) and flips only if asked.
torch::Tensor Augment(const torch::Tensor& x, int64_t shift, bool flips, bool zero_pad) {
  if (x.dim() != 4) return x;
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const auto opts = torch::TensorOptions().device(x.device());
  torch::Tensor out = x;
  if (flips) {
    torch::Tensor flip = torch::rand({n, 1, 1, 1}, opts) < 0.5;
    out = torch::where(flip, x.flip({3}), x);
  }
  if (shift == 0) return out;
  namespace F = torch::nn::functional;
  torch::Tensor padded =
      zero_pad
          ? F::pad(out, F::PadFuncOptions({shift, shift, shift, shift}))
          : F::pad(out, F::PadFuncOptions({shift, shift, shift, shift}).mode(torch::kReplicate));
  const auto lopts = opts.dtype(torch::kInt64);
  torch::Tensor dy = torch::randint(0, 2 * shift + 1, {n, 1}, lopts);
  torch::Tensor dx = torch::randint(0, 2 * shift + 1, {n, 1}, lopts);
  torch::Tensor rows = (dy + torch::arange(h, lopts).unsqueeze(0)).unsqueeze(2);  // n, h, 1
  torch::Tensor cols = (dx + torch::arange(w, lopts).unsqueeze(0)).unsqueeze(1);  // n, 1, w
  torch::Tensor batch = torch::arange(n, lopts).view({n, 1, 1});
  // (n, h+2s, w+2s, c) gathered at [batch, rows, cols] -> (n, h, w, c) -> (n, c, h, w).
  return padded.permute({0, 2, 3, 1})
      .index({batch, rows, cols})
      .permute({0, 3, 1, 2})
      .contiguous(x.suggest_memory_format());
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

class TorchTrainer final : public Trainer {
 public:
  TorchTrainer(TorchTrainerOptions o, torch::Device device)
      : o_(std::move(o)), device_(device), autocast_(!o_.autocast.empty()) {
    SetTorchThreads(o_.threads);
  }

  std::optional<MeasureContext> Measuring() const override {
    return MeasureContext{o_.device, o_.latency};
  }
  // Images: the built-in data sets and the user's files (not tables, not external trainers).
  std::vector<std::string> Datasets() const override {
    return {"fashion-mnist", "synthetic", "idx", "cifar", "npy"};
  }

  std::vector<std::string> CompressionKinds() const override {
    return {"int8", "prune", "distill"};
  }

  absl::StatusOr<PruneResult> Prune(const PruneRequest& req) override {
    try {
      NF_RETURN_IF_ERROR(LoadData(req.training));
      return PruneTrained(req, data_, device_);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
    }
  }

  absl::StatusOr<QuantizeResult> Quantize(const QuantizeRequest& req) override {
    try {
      NF_RETURN_IF_ERROR(LoadData(req.training));
      return QuantizeTrained(req, data_, device_, o_.latency);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
    }
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
    if (data_.key == DataKey(t)) return absl::OkStatus();
    NF_ASSIGN_OR_RETURN(data_, LoadTrainingData(t, o_, device_));
    return absl::OkStatus();
  }

  static torch::Tensor Fit(const torch::Tensor& x, int64_t size) { return FitResolution(x, size); }

  // Evaluation in chunks: on the CPU as large as a training batch (the activations then fit
  // in memory glibc keeps from training, instead of a fresh mapping of tens of MB per chunk);
  // on a GPU large (the caching allocator reuses it; fewer launches). One sync at the end.
  double Accuracy(const Net& net, const torch::Tensor& x, const torch::Tensor& y, int64_t size,
                  int64_t batch_size) {
    torch::NoGradGuard ng;
    net->eval();
    const int64_t chunk = device_.is_cuda() ? 4096 : std::max<int64_t>(64, batch_size);
    torch::Tensor correct =
        torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device_));
    for (int64_t i = 0; i < x.size(0); i += chunk) {
      int64_t e = std::min<int64_t>(i + chunk, x.size(0));
      auto pred = Forward(net, Fit(x.slice(0, i, e), size)).argmax(1);
      correct += pred.eq(y.slice(0, i, e)).sum();
    }
    return x.size(0) == 0 ? 0.0 : static_cast<double>(correct.item<int64_t>()) / x.size(0);
  }

  // forward with the worker's autocast and memory format.
  torch::Tensor Forward(const Net& net, const torch::Tensor& x) {
    torch::Tensor in = x;
    if (o_.channels_last && in.dim() == 4) in = in.contiguous(torch::MemoryFormat::ChannelsLast);
    if (autocast_ || trial_bf16_) {
      CudaAutocast on(true, torch::kBFloat16);
      return net->forward(in).to(torch::kFloat32);
    }
    return net->forward(in);
  }

  absl::StatusOr<TrainResult> TrainImpl(const TrainRequest& req,
                                        const std::function<Verdict(const EpochReport&)>& on_epoch,
                                        const std::atomic<bool>& abort) {
    NF_RETURN_IF_ERROR(ValidateArchitecture(req.architecture, "architecture"));
    const v1::Architecture& a = req.architecture;
    const auto& t = req.training;
    // The job's Training with the candidate's hyperparameters (core/recipe.h).
    NF_ASSIGN_OR_RETURN(const Recipe rc, ResolveRecipe(t, a));
    trial_bf16_ = rc.precision == "bf16" && device_.is_cuda();
    NF_RETURN_IF_ERROR(LoadData(t));
    const InputShape in = ArchInputShape(a);
    const bool fits =
        in.flat ? in.channels == data_.train.x[0].numel() : in.channels == data_.train.x.size(1);
    const int64_t size = in.flat ? 0 : in.height;
    if (!fits) {
      return absl::InvalidArgumentError(
          absl::StrCat("architecture expects ", in.channels, "x", in.height, "x", in.width,
                       " inputs but the data set has ", data_.train.x.size(1), "x",
                       data_.train.x.size(2), "x", data_.train.x.size(3)));
    }
    if (data_.classes > in.num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("the data has labels up to ", data_.classes - 1, " (", data_.classes,
                       " classes) but the architecture has num_classes ", in.num_classes,
                       "; set the space's num_classes to at least ", data_.classes));
    }
    ResetPeakRss();
    torch::manual_seed(req.seed);
    NF_ASSIGN_OR_RETURN(Net net, BuildNet(a));
    net->head_dropout = rc.dropout;

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

    net->to(device_);
    if (!req.initial_weights.empty()) NF_RETURN_IF_ERROR(LoadWeights(*net, req.initial_weights));
    if (o_.channels_last) {
      for (auto& p : net->parameters()) {
        if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
      }
    }

    NF_ASSIGN_OR_RETURN(const SplitTensors split,
                        SplitTensorsOf(t, data_, req.split_seed, device_));
    const torch::Tensor &tr_i = split.train_idx, &val_x = split.val_x, &val_y = split.val_y;

    const bool sgd = rc.optimizer == "sgd";
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (sgd) {
      opt = std::make_unique<torch::optim::SGD>(net->parameters(),
                                                torch::optim::SGDOptions(rc.learning_rate)
                                                    .momentum(rc.momentum)
                                                    .nesterov(rc.nesterov && rc.momentum > 0)
                                                    .weight_decay(rc.weight_decay));
    } else {
      opt = std::make_unique<torch::optim::AdamW>(
          net->parameters(),
          torch::optim::AdamWOptions(rc.learning_rate).weight_decay(rc.weight_decay));
    }
    // On a GPU, one fused kernel per step instead of LibTorch's per-tensor loop (AdamW).
    std::unique_ptr<FusedAdamW> fused =
        sgd ? nullptr : NewFusedAdamW(net->parameters(), rc.learning_rate, rc.weight_decay);
    const int64_t n = tr_i.size(0);
    const int64_t batch_size = rc.batch_size;
    const int64_t steps_per_epoch = (n + batch_size - 1) / batch_size;
    const int64_t total_steps = steps_per_epoch * req.epochs;
    TrainResult result;
    // Distillation: the teacher, loaded once, in eval mode (worker/trainer.h TrainRequest).
    Net teacher;
    int64_t teacher_size = 0;
    if (req.teacher) {
      const v1::Architecture& ta = req.teacher->architecture;
      NF_RETURN_IF_ERROR(ValidateArchitecture(ta, "teacher.architecture"));
      const InputShape tin = ArchInputShape(ta);
      teacher_size = tin.flat ? 0 : tin.height;
      // Building draws initial weights from the default generator: put its state back, so the
      // batches, augmentation and dropout are those of the same seed without a teacher (the
      // control run).
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      torch::Tensor rng;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        rng = gen.get_state();
      }
      auto built = BuildNet(ta);
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(rng);
      }
      NF_ASSIGN_OR_RETURN(teacher, std::move(built));
      teacher->to(device_);
      NF_RETURN_IF_ERROR(LoadWeights(*teacher, req.teacher->weights));
      result.metrics["teacher_accuracy"] =
          Accuracy(teacher, val_x, val_y, teacher_size, batch_size);
    }
    double best_val = -1, train_seconds = 0;
    int since_best = 0, epochs_run = 0;
    int64_t step = 0, images = 0;
    const auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    // Augmentation: random crops (zero padding) if asked, else `augment`'s 2-pixel edge shifts;
    // flips with either.
    const bool zero_pad = rc.random_crop_padding > 0;
    const int64_t shift = zero_pad ? rc.random_crop_padding : (rc.augment ? 2 : 0);
    const bool flips = rc.augment || rc.horizontal_flip;
    const auto loss_options =
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(rc.label_smoothing);
    for (int epoch = 1; epoch <= req.epochs; ++epoch) {
      auto t0 = Clock::now();
      net->train();
      torch::Tensor perm = tr_i.index_select(0, torch::randperm(n, long_opts));
      // The loss is summed on the device and read once per epoch: a read per step would wait
      // for the GPU every step.
      torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device_));
      int64_t batches = 0;
      for (int64_t i = 0; i < n; i += batch_size) {
        if (abort.load()) return absl::AbortedError("training aborted");
        const double lr = LearningRateAt(rc, step, steps_per_epoch, total_steps);
        if (fused) {
          fused->SetLr(lr);
        } else {
          for (auto& g : opt->param_groups()) g.options().set_lr(lr);
        }
        auto idx = perm.slice(0, i, std::min(i + batch_size, n));
        auto x = data_.train.x.index_select(0, idx);
        auto y = data_.train.y.index_select(0, idx);
        if (flips || shift > 0) x = Augment(x, shift, flips, zero_pad);
        fused ? fused->ZeroGrad() : opt->zero_grad();
        torch::Tensor logits = Forward(net, Fit(x, size)), loss;
        if (teacher) {
          torch::Tensor taught;
          {
            torch::NoGradGuard ng;
            taught = Forward(teacher, Fit(x, teacher_size));
          }
          loss = DistillationLoss(logits, taught, y, req.teacher->alpha, req.teacher->temperature);
        } else {
          loss = torch::nn::functional::cross_entropy(logits, y, loss_options);
        }
        loss.backward();
        fused ? fused->Step() : (void)opt->step();
        loss_sum += loss.detach();
        ++batches;
        ++step;
        images += idx.size(0);
      }
      const double loss_mean = loss_sum.item<double>() / std::max<int64_t>(1, batches);
      double secs = Since(t0);
      train_seconds += secs;
      EpochReport r;
      r.epoch = epoch;
      r.train_loss = loss_mean;
      r.validation_accuracy = Accuracy(net, val_x, val_y, size, batch_size);
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
    if (epochs_run == 0) best_val = Accuracy(net, val_x, val_y, size, batch_size);  // epochs 0
    auto& m = result.metrics;
    m["accuracy"] = best_val;
    if (split.test_x.defined()) {
      m["test_accuracy"] = Accuracy(net, split.test_x, split.test_y, size, batch_size);
    }
    if (rc.precision == "bf16") m["mixed_precision"] = trial_bf16_ ? 1 : 0;
    m["macs"] = static_cast<double>(macs);
    m["params"] = static_cast<double>(params);
    m["train_seconds"] = train_seconds;
    m["images_per_second"] = images / std::max(train_seconds, 1e-9);
    m["epochs"] = epochs_run;
    if (o_.keep_weights) {
      auto w = ExportWeights(*net, a, req.seed);
      if (!w.ok()) return w.status();
      result.weights = std::move(w->weights);
      result.check = std::move(w->check);
    }
    // The trained model's own latency on the training device (fp32, batch 1): what the trial
    // reports when its job names no hardware targets. MeasureLatency converts the model in place,
    // so it comes after the weights are taken.
    const auto latency_start = Clock::now();
    auto lat = MeasureLatency(*net, a, device_, LatencySpec{}, o_.latency);
    if (!lat.ok()) return lat.status();
    AddLatencyMetrics(*lat, &m);
    result.latency_measure_seconds = Since(latency_start);
    m["peak_memory_bytes"] = PeakRssBytes();
    return result;
  }

  TorchTrainerOptions o_;
  torch::Device device_;
  bool autocast_ = false;
  bool trial_bf16_ = false;  // this trial's recipe asked for bf16 and the device has it
  TrainingData data_;        // the last job's data (loaded again when a job names other data)
};

}  // namespace

absl::StatusOr<std::unique_ptr<Trainer>> NewTorchTrainer(const TorchTrainerOptions& options) {
  auto device = ParseTorchDevice(options.device);
  if (!device.ok()) return device.status();
  if (!options.autocast.empty() && options.autocast != "bf16") {
    return absl::InvalidArgumentError(
        absl::StrCat("autocast: must be empty or bf16, got '", options.autocast, "'"));
  }
  if (!options.autocast.empty() && !device->is_cuda()) {
    return absl::InvalidArgumentError("autocast bf16: needs a CUDA device (--device cuda)");
  }
  RegisterTorchLatencyRuntimes();
  auto t = std::make_unique<TorchTrainer>(options, *device);
  return std::unique_ptr<Trainer>(std::move(t));
}

void SetTorchThreads(int threads) {
  static std::once_flag once;
  std::call_once(once, [&] {
    torch::set_num_threads(std::max(1, threads));
    try {
      at::set_num_interop_threads(1);
    } catch (const c10::Error&) {
    }
  });
}

std::string AcceleratorName(const std::string& device) {
  auto d = ParseTorchDevice(device);
  if (!d.ok() || !d->is_cuda()) return "none";
  return CudaDeviceName(d->index());
}

absl::StatusOr<LatencyStats> MeasureArchitecture(const v1::Architecture& arch,
                                                 const std::string& device, const LatencySpec& spec,
                                                 const LatencyBudget& budget, uint64_t seed) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, "architecture"));
  auto d = ParseTorchDevice(device);
  if (!d.ok()) return d.status();
  try {
    torch::manual_seed(seed);
    NF_ASSIGN_OR_RETURN(Net net, BuildNet(arch));
    return MeasureLatency(*net, arch, *d, spec, budget);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<ModelFiles> ExportFreshModel(const v1::Architecture& arch, uint64_t seed,
                                            int warm_batches) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, "architecture"));
  try {
    torch::manual_seed(seed);
    NF_ASSIGN_OR_RETURN(Net net, BuildNet(arch));
    net->train();
    {
      torch::NoGradGuard ng;
      for (int i = 0; i < warm_batches; ++i) net->forward(RandomInput(arch, 8) * 2 + 0.5);
    }
    auto w = ExportWeights(*net, arch, seed);
    if (!w.ok()) return w.status();
    return ModelFiles{std::move(w->weights), std::move(w->check)};
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<BuiltModelCount> CountBuiltModel(const v1::Architecture& arch, int batch) {
  NF_RETURN_IF_ERROR(ValidateArchitecture(arch, "architecture"));
  try {
    NF_ASSIGN_OR_RETURN(Net net, BuildNet(arch));
    NetCount n = CountNet(*net, ExampleInput(arch, batch));
    return BuiltModelCount{n.params, n.macs, n.output_shape};
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  }
}

}  // namespace nasforge
