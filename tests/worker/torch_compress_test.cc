// Compression pieces (worker/torch_compress.h) against hand-computed values, against LibTorch's
// own quantization functions, and on a sampled network of every built-in kind: folding keeps the
// logits, the fake-quantized twin computes on the int8 grid.
#include "worker/torch_compress.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/jobspec.h"
#include "core/search_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/torch_models.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

TEST(FoldBatchNormTest, HandComputed) {
  // k = gamma / sqrt(var + eps) = 3 / sqrt(3 + 1) = 1.5; w' = 2 * 1.5; b' = (0 - 0.5) * 1.5 + 1.
  auto [w, b] =
      FoldBatchNorm(torch::full({1, 1, 1, 1}, 2.0), torch::Tensor(), torch::full({1}, 3.0),
                    torch::full({1}, 1.0), torch::full({1}, 0.5), torch::full({1}, 3.0), 1.0);
  EXPECT_FLOAT_EQ(w.item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(b.item<float>(), 0.25f);
  // With a bias, per channel of a linear layer's [out, in] weight.
  auto [w2, b2] = FoldBatchNorm(torch::tensor({{1.0, 2.0}, {3.0, 4.0}}), torch::tensor({1.0, -1.0}),
                                torch::tensor({1.0, 2.0}), torch::tensor({0.0, 1.0}),
                                torch::tensor({0.0, 1.0}), torch::tensor({1.0, 4.0}), 0.0);
  EXPECT_TRUE(torch::allclose(w2, torch::tensor({{1.0, 2.0}, {3.0, 4.0}})));
  EXPECT_TRUE(torch::allclose(b2, torch::tensor({1.0, -1.0})));  // (-1 - 1) * 1 + 1
}

TEST(QuantizeTest, WeightsPerChannelMatchLibTorch) {
  torch::Tensor w = torch::tensor({{1.27, -0.634, 0.0}, {0.0, 0.0, 0.0}});
  Int8Weights q = QuantizeWeightsPerChannel(w);
  EXPECT_TRUE(torch::equal(q.q, torch::tensor({{127, -63, 0}, {0, 0, 0}}, torch::kInt8)));
  EXPECT_TRUE(torch::allclose(q.scale, torch::tensor({0.01, 1.0})));
  // LibTorch's quantizer with our scales gives the same integers and values.
  torch::Tensor ref = torch::quantize_per_channel(
      w, q.scale.to(torch::kDouble), torch::zeros({2}, torch::kLong), 0, torch::kQInt8);
  EXPECT_TRUE(torch::equal(ref.int_repr(), q.q));
  EXPECT_TRUE(torch::allclose(ref.dequantize(), Dequantize(q)));
  // Every value within half a step of the original.
  torch::Tensor r = torch::randn({8, 4, 3, 3});
  Int8Weights qr = QuantizeWeightsPerChannel(r);
  EXPECT_LE(((Dequantize(qr) - r).abs() - qr.scale.reshape({-1, 1, 1, 1}) / 2).max().item<float>(),
            1e-6);
}

TEST(QuantizeTest, ActivationParamsIncludeZero) {
  Uint8Params p = ActivationParams(-1.0, 3.0);
  EXPECT_DOUBLE_EQ(p.scale, 4.0 / 255);
  EXPECT_EQ(p.zero_point, 64);     // round(1 / (4 / 255)) = round(63.75)
  p = ActivationParams(0.5, 2.0);  // widened to [0, 2]
  EXPECT_DOUBLE_EQ(p.scale, 2.0 / 255);
  EXPECT_EQ(p.zero_point, 0);
  p = ActivationParams(-2.0, -1.0);  // widened to [-2, 0]
  EXPECT_EQ(p.zero_point, 255);
  p = ActivationParams(0.0, 0.0);
  EXPECT_DOUBLE_EQ(p.scale, 1.0);
  EXPECT_EQ(p.zero_point, 0);
}

TEST(DistillationLossTest, HandComputed) {
  // Teacher probabilities (3/4, 1/4), a uniform student, target 0:
  // KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812, CE = ln 2.
  torch::Tensor s = torch::zeros({1, 2});
  torch::Tensor t = torch::tensor({{std::log(3.0), 0.0}}).to(torch::kFloat32);
  torch::Tensor y = torch::tensor({0}, torch::kLong);
  EXPECT_NEAR(DistillationLoss(s, t, y, 0.5, 1.0).item<double>(), 0.411980, 1e-5);
  // T = 2: teacher (0.633975, 0.366025); KL = 0.036334, times T^2; alpha 1: no CE.
  EXPECT_NEAR(DistillationLoss(s, t, y, 1.0, 2.0).item<double>(), 0.145363, 1e-5);
  // alpha 0 is plain cross-entropy; the teacher gets no gradient.
  torch::Tensor st = torch::randn({4, 10}, torch::requires_grad());
  torch::Tensor tt = torch::randn({4, 10}, torch::requires_grad());
  torch::Tensor yy = torch::randint(10, {4}, torch::kLong);
  EXPECT_NEAR(DistillationLoss(st, tt, yy, 0.0, 4.0).item<double>(),
              torch::cross_entropy_loss(st, yy).item<double>(), 1e-6);
  DistillationLoss(st, tt, yy, 0.7, 4.0).backward();
  EXPECT_TRUE(st.grad().defined());
  EXPECT_FALSE(tt.grad().defined());
}

v1::Architecture Sample(const std::string& space_file, uint64_t seed) {
  std::ifstream in(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + space_file);
  std::stringstream text;
  text << in.rdbuf();
  v1::SearchSpace space;
  EXPECT_TRUE(YamlToMessage(text.str(), &space).ok()) << space_file;
  return NormalizedArchitecture(SampleArchitecture(space, seed));
}

// Random BatchNorm statistics, so folding has something to fold.
int RandomizeNorms(NetImpl& net) {
  torch::NoGradGuard no_grad;
  int n = 0;
  for (const auto& m : net.modules()) {
    torch::Tensor w, b, mean, var;
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      w = bn->weight, b = bn->bias, mean = bn->running_mean, var = bn->running_var;
    } else if (auto bn1 = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
      w = bn1->weight, b = bn1->bias, mean = bn1->running_mean, var = bn1->running_var;
    } else {
      continue;
    }
    w.uniform_(0.5, 1.5);
    b.uniform_(-0.5, 0.5);
    mean.uniform_(-0.5, 0.5);
    var.uniform_(0.5, 2.0);
    ++n;
  }
  return n;
}

struct KindCase {
  const char* space;
  int unfolded;  // BatchNorms no layer precedes directly
};

class EveryKindTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(EveryKindTest, FoldingKeepsTheLogitsAndQuantizationComputesOnTheInt8Grid) {
  torch::manual_seed(7);
  v1::Architecture arch = Sample(GetParam().space, 3);
  auto net = BuildNet(arch).value();
  const int norms = RandomizeNorms(*net);
  InputShape in = ArchInputShape(arch);
  torch::Tensor x = torch::randn({8, in.channels, in.height, in.width});
  net->eval();
  torch::Tensor before;
  {
    torch::NoGradGuard no_grad;
    before = net->forward(x);
  }
  auto folded = FoldBatchNorms(*net, x);
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(*folded, norms - GetParam().unfolded) << ArchSummary(arch);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(
      torch::allclose(net->forward(x), before, 1e-4, 1e-4 * before.abs().max().item<float>()));

  std::vector<torch::Tensor> calibration = {torch::randn({16, in.channels, in.height, in.width}),
                                            torch::randn({16, in.channels, in.height, in.width})};
  auto q = QuantizeInt8(*net, calibration);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_GT(q->layers, 0);
  EXPECT_TRUE(q->unobserved.empty());
  EXPECT_LT(q->int8_bytes, q->fp32_bytes / 3);  // 4 bytes a weight become 1
  // Each layer's weights sit on its int8 grid and its input is fake-quantized with the range it
  // saw.
  int checked = 0;
  for (const auto& m : net->modules()) {
    auto c = std::dynamic_pointer_cast<CountedConvImpl>(m);
    if (!c) continue;
    Int8Weights again = QuantizeWeightsPerChannel(c->conv->weight);
    EXPECT_TRUE(torch::allclose(Dequantize(again), c->conv->weight, 0, 1e-6));
    EXPECT_EQ(c->input_quant.mode, InputQuant::Mode::kFake);
    EXPECT_LE(c->input_quant.min, c->input_quant.max);
    ++checked;
  }
  EXPECT_GT(checked + (arch.has_mlp() ? 1 : 0), 0);
  torch::Tensor after = net->forward(x);
  EXPECT_TRUE(after.isfinite().all().item<bool>());
  // A twin, not another network: close to the fp32 logits (random weights and inputs are the
  // hard case for 8 bits; trained networks are measured in the benchmarks).
  EXPECT_LT((after - before).abs().max().item<float>(), 0.25 * before.abs().max().item<float>());

  // On every int8 engine this LibTorch has: the engine's network computes what the twin does,
  // up to the requantized outputs' rounding (a step of each layer's output range).
  const std::vector<std::string> engines = Int8Engines();
  EXPECT_FALSE(engines.empty());
  for (const std::string& engine : engines) {
    auto packed = PackInt8Engine(*net, engine);
    ASSERT_TRUE(packed.ok()) << engine << ": " << packed.status();
    EXPECT_EQ(*packed, q->layers) << engine;
    torch::Tensor on_engine = net->forward(x);
    EXPECT_LT((on_engine - after).abs().max().item<float>(),
              0.1 * after.abs().max().item<float>() + 1e-3)
        << engine << " " << ArchSummary(arch);
  }
  EXPECT_EQ(PackInt8Engine(*net, "tensorrt").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryKindTest,
                         ::testing::Values(KindCase{"mbconv_small.yaml", 0},
                                           KindCase{"resnet_small.yaml", 0},
                                           KindCase{"convnext_small.yaml", 0},
                                           KindCase{"nb201_fashion_mnist.yaml", 1},
                                           KindCase{"mlp_tabular.yaml", 0}),
                         [](const auto& info) {
                           std::string n = info.param.space;
                           return n.substr(0, n.find('.'));
                         });

// A network whose names pair a conv with a BatchNorm that does not follow it directly (a ReLU in
// between): the check catches it and leaves the network as it was.
struct MisnamedNet : NetImpl {
  MisnamedNet() {
    x = register_module("x", CountedConv(1, 4, 3, 1, 1, 1, false));
    x_bn = register_module("x_bn", torch::nn::BatchNorm2d(4));
    fc = register_module("fc", CountedLinear(4, 2));
  }
  torch::Tensor forward(torch::Tensor in) override {
    auto h = x_bn->forward(torch::relu(x->forward(in)));
    return fc->forward(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }
  CountedConv x{nullptr};
  torch::nn::BatchNorm2d x_bn{nullptr};
  CountedLinear fc{nullptr};
};

TEST(FoldBatchNormsTest, APairThatIsNotAdjacentIsRefusedAndUndone) {
  torch::manual_seed(1);
  auto owned = std::make_shared<MisnamedNet>();  // modules() needs a shared owner
  MisnamedNet& net = *owned;
  RandomizeNorms(net);
  torch::Tensor in = torch::randn({4, 1, 8, 8});
  net.eval();
  torch::NoGradGuard no_grad;
  torch::Tensor before = net.forward(in);
  auto folded = FoldBatchNorms(net, in);
  ASSERT_FALSE(folded.ok());
  EXPECT_THAT(folded.status().message(), HasSubstr("x+x_bn"));
  EXPECT_TRUE(torch::allclose(net.forward(in), before, 1e-5, 1e-6));
}

TEST(QuantizeTest, NoCalibrationIsRefused) {
  auto net = std::make_shared<MisnamedNet>();
  auto q = QuantizeInt8(*net, {});
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("calibration"));
}

}  // namespace
}  // namespace nasforge
