#include "worker/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

size_t ImageBytes(const ImageSet& s) {
  return static_cast<size_t>(s.count) * s.channels * s.height * s.width;
}

// Shapes a reader accepts: what a training image can be, and no overflow in ImageBytes.
absl::Status CheckShape(const std::string& path, const ImageSet& s) {
  if (s.count < 1 || s.channels < 1 || s.channels > 64 || s.height < 1 || s.width < 1 ||
      s.height > 4096 || s.width > 4096 ||
      static_cast<double>(s.count) * s.channels * s.height * s.width > 64e9) {
    return absl::DataLossError(absl::StrCat("'", path, "': ", s.count, " images of ", s.channels,
                                            "x", s.height, "x", s.width,
                                            " is not a data set (1..64 channels, sides 1..4096)"));
  }
  return absl::OkStatus();
}

// [N, H, W, C] bytes -> [N, C, H, W].
std::vector<uint8_t> HwcToChw(const uint8_t* src, const ImageSet& s) {
  std::vector<uint8_t> out(ImageBytes(s));
  const size_t plane = static_cast<size_t>(s.height) * s.width;
  const size_t image = plane * s.channels;
  for (size_t n = 0; n < static_cast<size_t>(s.count); ++n) {
    const uint8_t* in = src + n * image;
    uint8_t* o = out.data() + n * image;
    for (size_t p = 0; p < plane; ++p) {
      for (size_t c = 0; c < static_cast<size_t>(s.channels); ++c)
        o[c * plane + p] = in[p * s.channels + c];
    }
  }
  return out;
}

absl::Status CheckLabels(const std::string& path, ImageSet& s) {
  int32_t top = -1;
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if (s.labels[i] < 0 || s.labels[i] >= kMaxClasses) {
      return absl::DataLossError(absl::StrCat("'", path, "': label ", s.labels[i], " at index ", i,
                                              " is outside [0, ", kMaxClasses, ")"));
    }
    top = std::max(top, s.labels[i]);
  }
  s.num_classes = top + 1;
  return absl::OkStatus();
}

// A .npy file: its dtype descriptor, shape and data bytes (C order only).
struct Npy {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  size_t data_offset = 0;
};

absl::StatusOr<Npy> ReadNpy(const std::string& path) {
  NF_ASSIGN_OR_RETURN(auto raw, ReadAll(path));
  static const uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (raw.size() < 10 || !std::equal(kMagic, kMagic + 6, raw.begin())) {
    return absl::DataLossError(
        absl::StrCat("'", path, "' is not a .npy file (no \\x93NUMPY magic)"));
  }
  const int major = raw[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = raw[8] | (size_t{raw[9]} << 8);
    start = 10;
  } else if (raw.size() >= 12 && (major == 2 || major == 3)) {
    header_len = raw[8] | (size_t{raw[9]} << 8) | (size_t{raw[10]} << 16) | (size_t{raw[11]} << 24);
    start = 12;
  } else {
    return absl::DataLossError(absl::StrCat("'", path, "': .npy version ", major, " is not read"));
  }
  if (start + header_len > raw.size()) {
    return absl::DataLossError(absl::StrCat("'", path, "': truncated .npy header"));
  }
  const std::string h(raw.begin() + start, raw.begin() + start + header_len);
  Npy out;
  auto field = [&](const std::string& key) -> std::string {
    size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) return "";
    size_t colon = h.find(':', k);
    return colon == std::string::npos ? "" : h.substr(colon + 1);
  };
  std::string d = field("descr");
  size_t q1 = d.find('\''), q2 = q1 == std::string::npos ? q1 : d.find('\'', q1 + 1);
  if (q2 == std::string::npos) return absl::DataLossError(absl::StrCat("'", path, "': no dtype"));
  out.descr = d.substr(q1 + 1, q2 - q1 - 1);
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(field("fortran_order")), "True")) {
    return absl::DataLossError(absl::StrCat(
        "'", path, "' is in Fortran order; save it with numpy.ascontiguousarray first"));
  }
  std::string sh = field("shape");
  size_t open = sh.find('('), close = sh.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return absl::DataLossError(absl::StrCat("'", path, "': no shape in the header"));
  }
  for (absl::string_view part :
       absl::StrSplit(sh.substr(open + 1, close - open - 1), ',', absl::SkipWhitespace())) {
    int64_t v;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v) || v < 0) {
      return absl::DataLossError(
          absl::StrCat("'", path, "': bad shape ", sh.substr(open, close - open + 1)));
    }
    out.shape.push_back(v);
  }
  out.data_offset = start + header_len;
  out.bytes = std::move(raw);
  return out;
}

absl::StatusOr<std::vector<int32_t>> NpyLabels(const std::string& path, const Npy& a) {
  if (a.shape.size() != 1) {
    return absl::DataLossError(absl::StrCat("'", path, "': labels must be 1-d [N], the shape has ",
                                            a.shape.size(), " dimensions"));
  }
  // Integer dtypes: |u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8 (little-endian or one byte).
  const std::string& t = a.descr;
  if (t.size() != 3 || (t[0] != '<' && t[0] != '|') || (t[1] != 'i' && t[1] != 'u') ||
      (t[2] != '1' && t[2] != '2' && t[2] != '4' && t[2] != '8')) {
    return absl::DataLossError(absl::StrCat("'", path,
                                            "': labels must be integers (int8..int64, "
                                            "little-endian), not dtype '",
                                            t, "'"));
  }
  const int width = t[2] - '0';
  const bool is_signed = t[1] == 'i';
  const size_t n = static_cast<size_t>(a.shape[0]);
  if (a.bytes.size() - a.data_offset != n * width) {
    return absl::DataLossError(
        absl::StrCat("'", path, "': ", n, " labels of ", width, " bytes need ", n * width,
                     " bytes of data, the file has ", a.bytes.size() - a.data_offset));
  }
  std::vector<int32_t> out(n);
  const uint8_t* p = a.bytes.data() + a.data_offset;
  for (size_t i = 0; i < n; ++i) {
    uint64_t u = 0;
    for (int b = 0; b < width; ++b) u |= uint64_t{p[i * width + b]} << (8 * b);
    int64_t v = static_cast<int64_t>(u);
    if (is_signed && width < 8 && (u >> (8 * width - 1)) & 1) v -= int64_t{1} << (8 * width);
    out[i] = v < 0 || v >= kMaxClasses ? -1 : static_cast<int32_t>(v);
    if (out[i] < 0) {
      return absl::DataLossError(absl::StrCat("'", path, "': label ", v, " at index ", i,
                                              " is outside [0, ", kMaxClasses, ")"));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ImageSet> ReadIdx(const std::string& images_path, const std::string& labels_path) {
  NF_ASSIGN_OR_RETURN(auto img, ReadAll(images_path));
  NF_ASSIGN_OR_RETURN(auto lab, ReadAll(labels_path));
  const uint32_t magic = img.size() >= 4 ? BigEndian(img.data()) : 0;
  if (magic != 0x00000803 && magic != 0x00000804) {
    return absl::DataLossError(absl::StrCat(
        "'", images_path,
        "' is not an IDX image file of bytes (magic 0x00000803 [N, H, W] or 0x00000804 "
        "[N, H, W, C])"));
  }
  const size_t header = magic == 0x00000803 ? 16 : 20;
  if (img.size() < header) {
    return absl::DataLossError(absl::StrCat("'", images_path, "': truncated header"));
  }
  ImageSet s;
  s.count = static_cast<int>(BigEndian(img.data() + 4));
  s.height = static_cast<int>(BigEndian(img.data() + 8));
  s.width = static_cast<int>(BigEndian(img.data() + 12));
  s.channels = magic == 0x00000803 ? 1 : static_cast<int>(BigEndian(img.data() + 16));
  NF_RETURN_IF_ERROR(CheckShape(images_path, s));
  const size_t want = header + ImageBytes(s);
  if (img.size() != want) {
    return absl::DataLossError(absl::StrCat("'", images_path, "': header says ", s.count, "x",
                                            s.height, "x", s.width, "x", s.channels, " (", want,
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
  if (s.channels == 1) {
    s.pixels.assign(img.begin() + header, img.end());
  } else {
    s.pixels = HwcToChw(img.data() + header, s);
  }
  s.labels.assign(lab.begin() + 8, lab.end());
  s.num_classes = s.count == 0 ? 0 : 1 + *std::max_element(s.labels.begin(), s.labels.end());
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

absl::StatusOr<ImageSet> ReadCifarSplit(const std::string& dir, const std::string& split) {
  const bool test = split == "test";
  std::vector<std::string> files;
  int label_bytes = 1;
  if (std::filesystem::exists(dir + "/data_batch_1.bin") ||
      std::filesystem::exists(dir + "/test_batch.bin")) {  // CIFAR-10
    if (test) {
      files = {dir + "/test_batch.bin"};
    } else {
      for (int i = 1; i <= 5; ++i) {
        std::string f = absl::StrCat(dir, "/data_batch_", i, ".bin");
        if (std::filesystem::exists(f)) files.push_back(f);
      }
    }
  } else if (std::filesystem::exists(dir + "/train.bin") ||
             std::filesystem::exists(dir + "/test.bin")) {  // CIFAR-100
    files = {dir + (test ? "/test.bin" : "/train.bin")};
    label_bytes = 2;
  } else {
    return absl::NotFoundError(absl::StrCat(
        "data dir '", dir,
        "' has no CIFAR binary batches (data_batch_1..5.bin + test_batch.bin for CIFAR-10, "
        "train.bin + test.bin for CIFAR-100)"));
  }
  constexpr size_t kPixels = 3 * 32 * 32;
  const size_t record = label_bytes + kPixels;
  ImageSet s;
  s.channels = 3;
  s.height = s.width = 32;
  for (const std::string& f : files) {
    NF_ASSIGN_OR_RETURN(auto raw, ReadAll(f));
    if (raw.empty() || raw.size() % record != 0) {
      return absl::DataLossError(absl::StrCat(
          "'", f, "': ", raw.size(), " bytes is not a whole number of ", record, "-byte records (",
          label_bytes, " label byte", label_bytes > 1 ? "s" : "", " + 3x32x32 pixels)"));
    }
    for (size_t off = 0; off < raw.size(); off += record) {
      s.labels.push_back(raw[off + label_bytes - 1]);  // CIFAR-100: the fine label
      s.pixels.insert(s.pixels.end(), raw.begin() + off + label_bytes, raw.begin() + off + record);
    }
  }
  if (s.labels.empty()) {
    return absl::NotFoundError(absl::StrCat("data dir '", dir, "' has no ", split, " batches"));
  }
  s.count = static_cast<int>(s.labels.size());
  NF_RETURN_IF_ERROR(CheckLabels(files[0], s));
  return s;
}

absl::StatusOr<ImageSet> ReadNpySplit(const std::string& dir, const std::string& split) {
  const std::string images = absl::StrCat(dir, "/", split, "_images.npy");
  const std::string labels = absl::StrCat(dir, "/", split, "_labels.npy");
  if (!std::filesystem::exists(images) || !std::filesystem::exists(labels)) {
    return absl::NotFoundError(absl::StrCat("data dir '", dir, "' has no ", split, "_images.npy + ",
                                            split, "_labels.npy"));
  }
  NF_ASSIGN_OR_RETURN(Npy img, ReadNpy(images));
  NF_ASSIGN_OR_RETURN(Npy lab, ReadNpy(labels));
  if (img.descr != "|u1" && img.descr != "<u1") {
    return absl::DataLossError(absl::StrCat("'", images, "': images must be uint8, not dtype '",
                                            img.descr, "' (numpy: images.astype(np.uint8))"));
  }
  if (img.shape.size() != 3 && img.shape.size() != 4) {
    return absl::DataLossError(absl::StrCat("'", images,
                                            "': images must be [N, H, W, C] or [N, H, W], "
                                            "the shape has ",
                                            img.shape.size(), " dimensions"));
  }
  ImageSet s;
  s.count = static_cast<int>(std::min<int64_t>(img.shape[0], INT32_MAX));
  s.height = static_cast<int>(std::min<int64_t>(img.shape[1], INT32_MAX));
  s.width = static_cast<int>(std::min<int64_t>(img.shape[2], INT32_MAX));
  s.channels =
      img.shape.size() == 4 ? static_cast<int>(std::min<int64_t>(img.shape[3], INT32_MAX)) : 1;
  NF_RETURN_IF_ERROR(CheckShape(images, s));
  if (img.bytes.size() - img.data_offset != ImageBytes(s)) {
    return absl::DataLossError(absl::StrCat("'", images, "': the header's shape needs ",
                                            ImageBytes(s), " bytes of data, the file has ",
                                            img.bytes.size() - img.data_offset));
  }
  NF_ASSIGN_OR_RETURN(s.labels, NpyLabels(labels, lab));
  if (static_cast<int64_t>(s.labels.size()) != s.count) {
    return absl::DataLossError(absl::StrCat("'", labels, "' holds ", s.labels.size(), " labels, '",
                                            images, "' ", s.count, " images"));
  }
  s.pixels = s.channels == 1
                 ? std::vector<uint8_t>(img.bytes.begin() + img.data_offset, img.bytes.end())
                 : HwcToChw(img.bytes.data() + img.data_offset, s);
  NF_RETURN_IF_ERROR(CheckLabels(labels, s));
  return s;
}

absl::StatusOr<ImageSet> ReadDatasetSplit(const std::string& format, const std::string& dir,
                                          const std::string& split) {
  if (format == "idx") return ReadIdxSplit(dir, split);
  if (format == "cifar") return ReadCifarSplit(dir, split);
  if (format == "npy") return ReadNpySplit(dir, split);
  return absl::InvalidArgumentError(
      absl::StrCat("training.dataset: '", format, "' is not a file format (idx, cifar, npy)"));
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
    s.labels[i] = c;
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
