// The NAS-Bench-201 cell space inside its CIFAR macro skeleton (Dong & Yang, ICLR 2020; layout
// of xautodl's TinyNetwork / InferCell):
//   stem: 3x3 conv (no bias) + BN -> C
//   3 stages of N cells at C, 2C, 4C; between stages a residual reduction block
//     (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, shortcut: 2x2 avg pool + 1x1 conv)
//   BN + ReLU, global average pooling, linear classifier.
// A cell has nodes 0..3; node j sums op(node i) over the edges i -> j. Edge order in the arch
// string: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). Ops: none (zero), skip_connect,
// nor_conv_1x1 / nor_conv_3x3 (ReLU-conv-BN, affine), avg_pool_3x3 (stride 1, pad 1).
#include "core/nb201.h"

#include "absl/strings/str_split.h"
#include "core/space_kind.h"

namespace nasforge {

const std::vector<std::string>& NB201Ops() {
  static const std::vector<std::string> ops = {"none", "skip_connect", "nor_conv_1x1",
                                               "nor_conv_3x3", "avg_pool_3x3"};
  return ops;
}

absl::StatusOr<std::array<std::string, 6>> ParseNB201Cell(const std::string& cell) {
  // "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
  std::vector<std::string> nodes = absl::StrSplit(cell, '+');
  if (nodes.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", cell,
                     "' is not a NAS-Bench-201 arch string: expected 3 nodes "
                     "separated by '+', like |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"));
  }
  std::array<std::string, 6> ops;
  int e = 0;
  for (int j = 0; j < 3; ++j) {
    const std::string& node = nodes[j];
    if (node.size() < 2 || node.front() != '|' || node.back() != '|') {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", j + 1, " '", node, "' must start and end with '|'"));
    }
    std::vector<std::string> edges =
        absl::StrSplit(node.substr(1, node.size() - 2), '|', absl::SkipEmpty());
    if (static_cast<int>(edges.size()) != j + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", j + 1, " needs ", j + 1, " edges, has ", edges.size()));
    }
    for (int i = 0; i <= j; ++i) {
      std::vector<std::string> parts = absl::StrSplit(edges[i], '~');
      if (parts.size() != 2 || parts[1] != std::to_string(i)) {
        return absl::InvalidArgumentError(absl::StrCat("edge '", edges[i], "' of node ", j + 1,
                                                       " must be op~", i, " (inputs in order)"));
      }
      NF_RETURN_IF_ERROR(CheckName(parts[0], absl::StrCat("edge ", i, "->", j + 1), NB201Ops()));
      ops[e++] = parts[0];
    }
  }
  return ops;
}

std::string FormatNB201Cell(const std::array<std::string, 6>& ops) {
  return absl::StrCat("|", ops[0], "~0|+|", ops[1], "~0|", ops[2], "~1|+|", ops[3], "~0|", ops[4],
                      "~1|", ops[5], "~2|");
}

namespace {

// Parameters of one cell op at width c (BN affine: weight + bias).
void PlanOp(Planner* p, const std::string& name, const std::string& op, int c, int size) {
  if (op == "nor_conv_1x1" || op == "nor_conv_3x3") {
    int k = op == "nor_conv_1x1" ? 1 : 3;
    p->Conv(name + ".conv", c, c, k, 1, k / 2, 1, false, size);
    p->BatchNorm(name + ".bn", c, size);
  }
}

int Or(int v, int d) { return v == 0 ? d : v; }

class NB201 final : public SpaceKind {
 public:
  std::string name() const override { return "nb201"; }
  absl::Status ValidateSpace(const v1::SearchSpace& space, const std::string& p) const override {
    const auto& s = space.nb201();
    NF_RETURN_IF_ERROR(CheckRange(Or(s.resolution(), 32), p + ".resolution", 8, 1024));
    NF_RETURN_IF_ERROR(CheckRange(Or(s.in_channels(), 3), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(Or(s.num_classes(), 10), p + ".num_classes", 2, 100000));
    if (!s.ops().empty()) NF_RETURN_IF_ERROR(CheckNames(s.ops(), p + ".ops", NB201Ops()));
    NF_RETURN_IF_ERROR(CheckRange(Or(s.channels(), 16), p + ".channels", 1, 1024));
    return CheckRange(Or(s.cells_per_stage(), 5), p + ".cells_per_stage", 1, 32);
  }

  absl::Status ValidateArch(const v1::Architecture& arch, const std::string& p) const override {
    const auto& a = arch.nb201();
    NF_RETURN_IF_ERROR(CheckRange(Or(a.resolution(), 32), p + ".resolution", 8, 4096));
    NF_RETURN_IF_ERROR(CheckRange(Or(a.in_channels(), 3), p + ".in_channels", 1, 16));
    NF_RETURN_IF_ERROR(CheckRange(Or(a.num_classes(), 10), p + ".num_classes", 2, 100000));
    NF_RETURN_IF_ERROR(CheckRange(Or(a.channels(), 16), p + ".channels", 1, 1024));
    NF_RETURN_IF_ERROR(CheckRange(Or(a.cells_per_stage(), 5), p + ".cells_per_stage", 1, 32));
    auto ops = ParseNB201Cell(a.cell());
    if (!ops.ok()) return FieldError(p + ".cell", ops.status().message());
    return absl::OkStatus();
  }

  void Normalize(v1::Architecture* arch) const override {
    auto* a = arch->mutable_nb201();
    a->set_resolution(Or(a->resolution(), 32));
    a->set_in_channels(Or(a->in_channels(), 3));
    a->set_num_classes(Or(a->num_classes(), 10));
    a->set_channels(Or(a->channels(), 16));
    a->set_cells_per_stage(Or(a->cells_per_stage(), 5));
  }

  std::vector<Decision> Decisions(const v1::SearchSpace& space) const override {
    std::vector<std::string> ops(space.nb201().ops().begin(), space.nb201().ops().end());
    if (ops.empty()) ops.assign(NB201Ops().begin(), NB201Ops().end());
    std::vector<Decision> d;
    for (const char* e : {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}) {
      AddDecision(&d, absl::StrCat("cell.edge(", e, ")"), static_cast<int>(ops.size()), ops);
    }
    return d;
  }

  v1::Architecture Decode(const v1::SearchSpace& space, const Genes& g) const override {
    const auto& s = space.nb201();
    std::array<std::string, 6> ops;
    for (int e = 0; e < 6; ++e) ops[e] = s.ops().empty() ? NB201Ops()[g[e]] : s.ops(g[e]);
    v1::Architecture arch;
    auto* a = arch.mutable_nb201();
    a->set_resolution(s.resolution());
    a->set_in_channels(s.in_channels());
    a->set_num_classes(s.num_classes());
    a->set_cell(FormatNB201Cell(ops));
    a->set_channels(s.channels());
    a->set_cells_per_stage(s.cells_per_stage());
    Normalize(&arch);
    return arch;
  }

  std::optional<Genes> Encode(const v1::SearchSpace& space,
                              const v1::Architecture& arch) const override {
    auto ops = ParseNB201Cell(arch.nb201().cell());
    if (!ops.ok()) return std::nullopt;
    Genes g;
    for (const auto& op : *ops) {
      int i =
          space.nb201().ops().empty() ? IndexOf(NB201Ops(), op) : IndexOf(space.nb201().ops(), op);
      if (i < 0) return std::nullopt;
      g.push_back(i);
    }
    return g;
  }

  void Plan(const v1::Architecture& arch, Planner* p) const override {
    v1::Architecture n = arch;
    Normalize(&n);
    const auto& a = n.nb201();
    auto ops = ParseNB201Cell(a.cell());
    if (!ops.ok()) return;
    int c = a.channels();
    int size = p->Conv("stem.conv", a.in_channels(), c, 3, 1, 1, 1, false, a.resolution());
    p->BatchNorm("stem.bn", c, size);
    for (int s = 0; s < 3; ++s) {
      if (s > 0) {
        std::string pre = absl::StrCat("reduce.", s);
        int out = 2 * c;
        int in_size = size;
        size = p->Conv(pre + ".conv_a", c, out, 3, 2, 1, 1, false, in_size);
        p->BatchNorm(pre + ".bn_a", out, size);
        p->Conv(pre + ".conv_b", out, out, 3, 1, 1, 1, false, size);
        p->BatchNorm(pre + ".bn_b", out, size);
        int pooled = ConvOutSize(in_size, 2, 2, 0);
        p->Conv(pre + ".shortcut", c, out, 1, 1, 0, 1, false, pooled);
        c = out;
      }
      for (int k = 0; k < a.cells_per_stage(); ++k) {
        for (int e = 0; e < 6; ++e) {
          PlanOp(p, absl::StrCat("stages.", s, ".", k, ".edge", e), (*ops)[e], c, size);
        }
      }
    }
    p->BatchNorm("lastact.bn", c, size);
    p->Linear("classifier", c, a.num_classes());
  }

  absl::Status SetResolution(v1::Architecture* arch, int r) const override {
    arch->mutable_nb201()->set_resolution(r);
    return absl::OkStatus();
  }
  void Scale(v1::Architecture* arch, const ScaleMaps& s) const override {
    auto* m = arch->mutable_nb201();
    m->set_channels(s.width(m->channels()));
    m->set_cells_per_stage(s.depth(m->cells_per_stage()));
    m->set_resolution(s.resolution(m->resolution()));
  }
  std::string Summary(const v1::Architecture& a) const override { return a.nb201().cell(); }
  InputShape Input(const v1::Architecture& arch) const override {
    const auto& a = arch.nb201();
    return {a.in_channels(), a.resolution(), a.resolution(), a.num_classes()};
  }
  bool HasTables() const override { return true; }
  std::string TableKey(const v1::Architecture& arch) const override { return arch.nb201().cell(); }
  bool Prunable() const override { return true; }
};

}  // namespace

const SpaceKind& NB201Kind() {
  static const NB201 k;
  return k;
}

}  // namespace nasforge
