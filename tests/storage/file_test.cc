#include "storage/file.h"

#include "temp_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace aidb::storage {
namespace {

class FileTest : public ::testing::Test {
 protected:
  aidbtest::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST(DirNameTest, SplitsPaths) {
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
}

TEST_F(FileTest, AtomicWriteFileThenReadFile) {
  std::string p = dir_ + "/f";
  ASSERT_TRUE(AtomicWriteFile(p, "hello").ok());
  std::string got;
  ASSERT_TRUE(ReadFile(p, &got).ok());
  EXPECT_EQ(got, "hello");
  ASSERT_TRUE(AtomicWriteFile(p, std::string(100000, 'x')).ok());
  ASSERT_TRUE(ReadFile(p, &got).ok());
  EXPECT_EQ(got, std::string(100000, 'x'));
  EXPECT_FALSE(FileExists(p + ".tmp." + std::to_string(getpid())));
  uint64_t size = 0;
  ASSERT_TRUE(FileSize(p, &size).ok());
  EXPECT_EQ(size, 100000u);
}

TEST_F(FileTest, AtomicWriteFileIntoMissingDirFailsCleanly) {
  Status s = AtomicWriteFile(dir_ + "/missing/f", "x");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("missing"), std::string::npos);
}

TEST_F(FileTest, MissingFilesAreNotFound) {
  std::string got;
  EXPECT_TRUE(ReadFile(dir_ + "/nope", &got).IsNotFound());
  uint64_t size;
  EXPECT_TRUE(FileSize(dir_ + "/nope", &size).IsNotFound());
  EXPECT_FALSE(FileExists(dir_ + "/nope"));
  std::shared_ptr<MappedFile> m;
  EXPECT_TRUE(MappedFile::Open(dir_ + "/nope", false, &m).IsNotFound());
}

TEST_F(FileTest, WriteAllPReadAllAndShortRead) {
  std::string p = dir_ + "/w";
  int fd = open(p.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "abcdef", 6, p).ok());
  ASSERT_TRUE(PWriteAll(fd, "XY", 2, 1, p).ok());
  ASSERT_TRUE(Fdatasync(fd, p).ok());
  ASSERT_TRUE(Fsync(fd, p).ok());
  char buf[6];
  ASSERT_TRUE(PReadAll(fd, buf, 6, 0, p).ok());
  EXPECT_EQ(std::string(buf, 6), "aXYdef");
  EXPECT_TRUE(PReadAll(fd, buf, 6, 3, p).IsCorruption());
  close(fd);
  EXPECT_TRUE(Fsync(-1, p).IsIOError());
  EXPECT_TRUE(FsyncDir(dir_).ok());
  EXPECT_TRUE(FsyncDir(dir_ + "/nope").IsIOError());
}

TEST_F(FileTest, RenameDurable) {
  ASSERT_TRUE(AtomicWriteFile(dir_ + "/a", "1").ok());
  ASSERT_TRUE(RenameDurable(dir_ + "/a", dir_ + "/b").ok());
  EXPECT_FALSE(FileExists(dir_ + "/a"));
  EXPECT_TRUE(FileExists(dir_ + "/b"));
  EXPECT_TRUE(RenameDurable(dir_ + "/a", dir_ + "/c").IsIOError());
}

TEST_F(FileTest, CreateDirsAndRemoveAll) {
  ASSERT_TRUE(CreateDirs(dir_ + "/x/y/z").ok());
  ASSERT_TRUE(CreateDirs(dir_ + "/x/y/z").ok());
  ASSERT_TRUE(AtomicWriteFile(dir_ + "/x/y/z/f", "1").ok());
  ASSERT_TRUE(RemoveAll(dir_ + "/x").ok());
  EXPECT_FALSE(FileExists(dir_ + "/x"));
  EXPECT_TRUE(RemoveAll(dir_ + "/x").ok());
}

TEST_F(FileTest, MappedFileReadOnlyAndPrivate) {
  std::string p = dir_ + "/m";
  ASSERT_TRUE(AtomicWriteFile(p, "mapped bytes").ok());
  std::shared_ptr<MappedFile> m;
  ASSERT_TRUE(MappedFile::Open(p, false, &m).ok());
  ASSERT_EQ(m->size(), 12u);
  EXPECT_EQ(std::memcmp(m->data(), "mapped bytes", 12), 0);
  m->AdviseSequential();

  std::shared_ptr<MappedFile> w;
  ASSERT_TRUE(MappedFile::Open(p, true, &w).ok());
  w->data()[0] = 'M';  // copy-on-write: the file keeps its bytes
  EXPECT_EQ(w->data()[0], 'M');
  std::string got;
  ASSERT_TRUE(ReadFile(p, &got).ok());
  EXPECT_EQ(got, "mapped bytes");
  EXPECT_EQ(m->data()[0], 'm');

  ASSERT_TRUE(AtomicWriteFile(p + "0", "").ok());
  std::shared_ptr<MappedFile> e;
  ASSERT_TRUE(MappedFile::Open(p + "0", false, &e).ok());
  EXPECT_EQ(e->data(), nullptr);
  EXPECT_EQ(e->size(), 0u);
}

}  // namespace
}  // namespace aidb::storage
