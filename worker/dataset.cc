#include "worker/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace nasforge {
namespace {

absl::StatusOr<std::vector<uint8_t>> ReadAll(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", std::strerror(errno)));
  }
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    return absl::DataLossError(absl::StrCat("'", path, "' is corrupt: ", msg));
  }
  return out;
}

uint32_t BigEndian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

absl::StatusOr<ImageSet> ReadIdx(const std::string& images_path, const std::string& labels_path) {
  NF_ASSIGN_OR_RETURN(auto img, ReadAll(images_path));
  NF_ASSIGN_OR_RETURN(auto lab, ReadAll(labels_path));
  if (img.size() < 16 || BigEndian(img.data()) != 0x00000803) {
    return absl::DataLossError(
        absl::StrCat("'", images_path, "' is not an IDX image file (magic 0x00000803)"));
  }
  ImageSet s;
  s.count = static_cast<int>(BigEndian(img.data() + 4));
  s.height = static_cast<int>(BigEndian(img.data() + 8));
  s.width = static_cast<int>(BigEndian(img.data() + 12));
  size_t want = 16 + size_t{static_cast<size_t>(s.count)} * s.height * s.width;
  if (img.size() != want) {
    return absl::DataLossError(absl::StrCat("'", images_path, "': header says ", s.count, "x",
                                            s.height, "x", s.width, " (", want,
                                            " bytes), file has ", img.size()));
  }
  if (lab.size() < 8 || BigEndian(lab.data()) != 0x00000801) {
    return absl::DataLossError(
        absl::StrCat("'", labels_path, "' is not an IDX label file (magic 0x00000801)"));
  }
  if (BigEndian(lab.data() + 4) != static_cast<uint32_t>(s.count) ||
      lab.size() != 8 + static_cast<size_t>(s.count)) {
    return absl::DataLossError(absl::StrCat("'", labels_path, "' does not hold ", s.count,
                                            " labels to match '", images_path, "'"));
  }
  s.pixels.assign(img.begin() + 16, img.end());
  s.labels.assign(lab.begin() + 8, lab.end());
  s.num_classes = 1 + *std::max_element(s.labels.begin(), s.labels.end());
  return s;
}

absl::StatusOr<ImageSet> ReadIdxSplit(const std::string& dir, const std::string& split) {
  std::string prefix = split == "test" ? "t10k" : "train";
  auto find = [&](const std::string& stem) -> std::string {
    for (const char* ext : {".gz", ""}) {
      std::string p = absl::StrCat(dir, "/", prefix, "-", stem, "-ubyte", ext);
      if (std::filesystem::exists(p)) return p;
    }
    return "";
  };
  std::string images = find("images-idx3"), labels = find("labels-idx1");
  if (images.empty() || labels.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "data dir '", dir, "' has no ", prefix, "-images-idx3-ubyte[.gz] / ", prefix,
        "-labels-idx1-ubyte[.gz]; install Debian's dataset-fashion-mnist or pass --data-dir"));
  }
  return ReadIdx(images, labels);
}

ImageSet MakeSynthetic(int count, int size, int num_classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60), label(0, num_classes - 1);
  ImageSet s;
  s.count = count;
  s.height = s.width = size;
  s.num_classes = num_classes;
  s.pixels.resize(size_t{static_cast<size_t>(count)} * size * size);
  s.labels.resize(count);
  int cells = 1;
  while (cells * cells < num_classes) ++cells;
  int block = size / cells;
  for (int i = 0; i < count; ++i) {
    int c = label(rng);
    s.labels[i] = static_cast<uint8_t>(c);
    uint8_t* p = &s.pixels[size_t{static_cast<size_t>(i)} * size * size];
    for (int k = 0; k < size * size; ++k) p[k] = static_cast<uint8_t>(noise(rng));
    int r0 = (c / cells) * block, c0 = (c % cells) * block;
    for (int r = r0; r < r0 + block; ++r) {
      for (int q = c0; q < c0 + block; ++q) p[r * size + q] = 200;
    }
  }
  return s;
}

void SplitIndices(int n, int train_count, int validation_count, uint64_t seed,
                  std::vector<int>* train, std::vector<int>* validation) {
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  validation_count = std::min(validation_count, n);
  validation->assign(idx.begin(), idx.begin() + validation_count);
  int rest = n - validation_count;
  int t = train_count <= 0 ? rest : std::min(train_count, rest);
  train->assign(idx.begin() + validation_count, idx.begin() + validation_count + t);
}

}  // namespace nasforge
