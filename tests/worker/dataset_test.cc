#include "worker/dataset.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nasforge {
namespace {

using ::testing::HasSubstr;

constexpr char kFashion[] = "/usr/share/datasets/fashion-mnist";

TEST(DatasetTest, ReadsDebianFashionMnist) {
  auto train = ReadIdxSplit(kFashion, "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->count, 60000);
  EXPECT_EQ(train->height, 28);
  EXPECT_EQ(train->width, 28);
  EXPECT_EQ(train->num_classes, 10);
  EXPECT_EQ(train->pixels.size(), 60000u * 28 * 28);
  // Fashion-MNIST is balanced: 6,000 of each class.
  std::vector<int> per(10);
  for (uint8_t l : train->labels) per[l]++;
  for (int c : per) EXPECT_EQ(c, 6000);
  auto test = ReadIdxSplit(kFashion, "test");
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(test->count, 10000);
}

TEST(DatasetTest, CorruptAndMissingFilesAreClearErrors) {
  std::string dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/idx-", getpid());
  std::filesystem::create_directories(dir);
  EXPECT_THAT(ReadIdxSplit(dir, "train").status().message(),
              HasSubstr("install Debian's dataset-fashion-mnist"));
  {
    std::ofstream(dir + "/train-images-idx3-ubyte") << "not an idx file at all";
    std::ofstream(dir + "/train-labels-idx1-ubyte") << "nope";
  }
  auto s = ReadIdxSplit(dir, "train");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("is not an IDX image file"));
  {
    // A valid header announcing more images than the file holds.
    std::ofstream f(dir + "/train-images-idx3-ubyte", std::ios::binary);
    const unsigned char h[] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3};
    f.write(reinterpret_cast<const char*>(h), sizeof h);
  }
  EXPECT_THAT(ReadIdxSplit(dir, "train").status().message(), HasSubstr("header says 5x2x2x1"));
  std::filesystem::remove_all(dir);
}

// Files of the user's own, written here: each format reads back as N, C, H, W with its labels.
class OwnFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/own-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                        getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
  }
  // A .npy file (format 1.0) with this dtype, shape and data.
  static std::string Npy(const std::string& descr, const std::string& shape,
                         const std::string& data, bool fortran = false) {
    std::string h =
        absl::StrCat("{'descr': '", descr, "', 'fortran_order': ", fortran ? "True" : "False",
                     ", 'shape': ", shape, ", }");
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(h.size() & 0xff);
    out += static_cast<char>(h.size() >> 8);
    return out + h + data;
  }
  std::string dir_;
};

// Pixel (n, y, x, c) of the HWC test images: distinct per position so the transpose is checked.
uint8_t Px(int n, int y, int x, int c) { return static_cast<uint8_t>(n * 50 + y * 12 + x * 3 + c); }

std::string HwcImages(int n, int h, int w, int c) {
  std::string s;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < c; ++k) s += static_cast<char>(Px(i, y, x, k));
  return s;
}

void ExpectChw(const ImageSet& s, int n, int h, int w, int c) {
  ASSERT_EQ(s.count, n);
  ASSERT_EQ(s.channels, c);
  ASSERT_EQ(s.height, h);
  ASSERT_EQ(s.width, w);
  ASSERT_EQ(s.pixels.size(), static_cast<size_t>(n) * c * h * w);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < c; ++k)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          ASSERT_EQ(s.pixels[((i * c + k) * h + y) * w + x], Px(i, y, x, k)) << i << k << y << x;
}

TEST_F(OwnFilesTest, NpyPairsAreReadInEveryIntegerLabelType) {
  std::string labels64;
  for (int64_t v : {3, 0, 99}) labels64.append(reinterpret_cast<const char*>(&v), 8);
  Write("train_images.npy", Npy("|u1", "(3, 2, 4, 3)", HwcImages(3, 2, 4, 3)));
  Write("train_labels.npy", Npy("<i8", "(3,)", labels64));
  auto s = ReadDatasetSplit("npy", dir_, "train");
  ASSERT_TRUE(s.ok()) << s.status();
  ExpectChw(*s, 3, 2, 4, 3);
  EXPECT_EQ(s->labels, (std::vector<int32_t>{3, 0, 99}));
  EXPECT_EQ(s->num_classes, 100);
  // No test split: NOT_FOUND, which the trainer reads as "no test set".
  EXPECT_EQ(ReadDatasetSplit("npy", dir_, "test").status().code(), absl::StatusCode::kNotFound);
  // Grey images [N, H, W] and uint8 labels.
  Write("test_images.npy", Npy("|u1", "(2, 3, 3)", std::string(18, '\x07')));
  Write("test_labels.npy", Npy("|u1", "(2,)", std::string("\x01\x02", 2)));
  auto t = ReadDatasetSplit("npy", dir_, "test");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->channels, 1);
  EXPECT_EQ(t->labels, (std::vector<int32_t>{1, 2}));
}

TEST_F(OwnFilesTest, BadNpyFilesNameTheFileAndTheProblem) {
  Write("train_labels.npy", Npy("|u1", "(2,)", std::string(2, '\x01')));
  auto err = [&] { return std::string(ReadDatasetSplit("npy", dir_, "train").status().message()); };
  Write("train_images.npy", Npy("<f4", "(2, 2, 2, 1)", std::string(32, '\0')));
  EXPECT_THAT(err(), HasSubstr("train_images.npy': images must be uint8, not dtype '<f4'"));
  Write("train_images.npy", Npy("|u1", "(2, 2, 2, 1)", std::string(5, '\0')));
  EXPECT_THAT(err(), HasSubstr("needs 8 bytes of data, the file has 5"));
  Write("train_images.npy", Npy("|u1", "(2, 2, 2, 1)", std::string(8, '\0'), true));
  EXPECT_THAT(err(), HasSubstr("Fortran order"));
  Write("train_images.npy", Npy("|u1", "(3, 2, 2, 1)", std::string(12, '\0')));
  EXPECT_THAT(err(), HasSubstr("holds 2 labels"));
  Write("train_images.npy", "PK\x03\x04 a zip");
  EXPECT_THAT(err(), HasSubstr("is not a .npy file"));
  Write("train_images.npy", Npy("|u1", "(2, 2, 2, 1)", std::string(8, '\0')));
  Write("train_labels.npy", Npy("<f8", "(2,)", std::string(16, '\0')));
  EXPECT_THAT(err(), HasSubstr("train_labels.npy': labels must be integers"));
  std::string neg;
  for (int32_t v : {1, -4}) neg.append(reinterpret_cast<const char*>(&v), 4);
  Write("train_labels.npy", Npy("<i4", "(2,)", neg));
  EXPECT_THAT(err(), HasSubstr("label -4 at index 1"));
}

TEST_F(OwnFilesTest, CifarTenAndHundredBinaryBatches) {
  auto record = [](int label_bytes, uint8_t coarse, uint8_t fine, uint8_t fill) {
    std::string r;
    if (label_bytes == 2) r += static_cast<char>(coarse);
    r += static_cast<char>(fine);
    return r + std::string(3 * 32 * 32, static_cast<char>(fill));
  };
  Write("data_batch_1.bin", record(1, 0, 7, 10) + record(1, 0, 2, 20));
  Write("data_batch_2.bin", record(1, 0, 9, 30));
  Write("test_batch.bin", record(1, 0, 1, 40));
  auto s = ReadDatasetSplit("cifar", dir_, "train");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->count, 3);
  EXPECT_EQ(s->channels, 3);
  EXPECT_EQ(s->height, 32);
  EXPECT_EQ(s->labels, (std::vector<int32_t>{7, 2, 9}));
  EXPECT_EQ(s->pixels[2 * 3072], 30);
  EXPECT_EQ(ReadDatasetSplit("cifar", dir_, "test")->count, 1);
  Write("data_batch_2.bin", record(1, 0, 9, 30).substr(0, 100));
  EXPECT_THAT(ReadDatasetSplit("cifar", dir_, "train").status().message(),
              HasSubstr("data_batch_2.bin': 100 bytes is not a whole number of 3073-byte records"));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  Write("train.bin", record(2, 4, 88, 1));
  Write("test.bin", record(2, 4, 5, 1));
  auto h = ReadDatasetSplit("cifar", dir_, "train");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->labels, (std::vector<int32_t>{88})) << "CIFAR-100: the fine label";
  EXPECT_THAT(ReadDatasetSplit("cifar", dir_ + "/nope", "train").status().message(),
              HasSubstr("has no CIFAR binary batches"));
}

TEST_F(OwnFilesTest, ColourIdxFilesAreReadAsChannelsFirst) {
  auto be = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
    return s;
  };
  Write("train-images-idx3-ubyte",
        be(0x804) + be(2) + be(3) + be(2) + be(3) + HwcImages(2, 3, 2, 3));
  Write("train-labels-idx1-ubyte", be(0x801) + be(2) + std::string("\x05\x01", 2));
  auto s = ReadDatasetSplit("idx", dir_, "train");
  ASSERT_TRUE(s.ok()) << s.status();
  ExpectChw(*s, 2, 3, 2, 3);
  EXPECT_EQ(s->num_classes, 6);
  EXPECT_EQ(ReadDatasetSplit("tiff", dir_, "train").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DatasetTest, SplitIsSeededAndDisjoint) {
  std::vector<int> tr, va, tr2, va2;
  SplitIndices(1000, 600, 200, 9, &tr, &va);
  SplitIndices(1000, 600, 200, 9, &tr2, &va2);
  EXPECT_EQ(tr, tr2);
  EXPECT_EQ(va, va2);
  EXPECT_EQ(tr.size(), 600u);
  EXPECT_EQ(va.size(), 200u);
  std::set<int> all(tr.begin(), tr.end());
  for (int v : va) EXPECT_FALSE(all.count(v));
  SplitIndices(1000, 0, 200, 9, &tr, &va);
  EXPECT_EQ(tr.size(), 800u);  // 0 = all the rest
  SplitIndices(1000, 600, 200, 10, &tr2, &va2);
  EXPECT_NE(va, va2);
}

}  // namespace
}  // namespace nasforge
