#include "worker/dataset.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

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
  EXPECT_THAT(ReadIdxSplit(dir, "train").status().message(), HasSubstr("header says 5x2x2"));
  std::filesystem::remove_all(dir);
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
