#include "core/cost.h"

#include <algorithm>

#include "core/space_kind.h"

namespace nasforge {
namespace {

LayerCost Layer(std::string name, const char* kind, int in, int out) {
  LayerCost l;
  l.name = std::move(name);
  l.kind = kind;
  l.in_channels = in;
  l.out_channels = out;
  return l;
}

}  // namespace

int Planner::Conv(std::string name, int in, int out, int k, int stride, int pad, int groups,
                  bool bias, int in_size) {
  LayerCost l = Layer(std::move(name), "conv", in, out);
  l.kernel = k;
  l.stride = stride;
  l.groups = groups;
  l.bias = bias;
  l.out_size = ConvOutSize(in_size, k, stride, pad);
  int64_t weights = int64_t{out} * (in / groups) * k * k;
  l.params = weights + (bias ? out : 0);
  l.macs = weights * l.out_size * l.out_size;
  l.activations = int64_t{out} * l.out_size * l.out_size;
  int out_size = l.out_size;
  Add(std::move(l));
  return out_size;
}

void Planner::BatchNorm(std::string name, int c, int size) {
  LayerCost l = Layer(std::move(name), "bn", c, c);
  l.out_size = size;
  l.params = 2 * int64_t{c};
  l.activations = int64_t{c} * size * size;
  Add(std::move(l));
}

void Planner::LayerNorm(std::string name, int c) {
  LayerCost l = Layer(std::move(name), "ln", c, c);
  l.params = 2 * int64_t{c};
  Add(std::move(l));
}

void Planner::Linear(std::string name, int in, int out, bool bias, int64_t rows) {
  LayerCost l = Layer(std::move(name), "linear", in, out);
  l.bias = bias;
  l.params = int64_t{in} * out + (bias ? out : 0);
  l.macs = int64_t{in} * out * rows;
  l.activations = int64_t{out} * rows;
  Add(std::move(l));
}

void Planner::Param(std::string name, int64_t count) {
  LayerCost l = Layer(std::move(name), "param", 0, 0);
  l.params = count;
  Add(std::move(l));
}

void Planner::Add(LayerCost l) {
  cost_.macs += l.macs;
  cost_.params += l.params;
  cost_.activations += l.activations;
  cost_.layers.push_back(std::move(l));
}

int64_t TrainingMemoryBytes(const ArchCost& cost, int batch_size) {
  return 16 * cost.params + 8 * int64_t{std::max(1, batch_size)} * cost.activations;
}

int SqueezeChannels(int block_in_channels, double se_ratio) {
  return std::max(1, static_cast<int>(block_in_channels * se_ratio + 1e-9));
}

int MakeDivisible(double v, int divisor) {
  int n = std::max(divisor, static_cast<int>(v + divisor / 2.0) / divisor * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

ArchCost ComputeCost(const v1::Architecture& arch) {
  Planner p;
  if (const SpaceKind* k = KindOf(arch)) k->Plan(arch, &p);
  return p.Take();
}

}  // namespace nasforge
