// The confined opens of snapshot paths (src/server/confined.h): a symlink
// anywhere on the way is refused by the open itself, so one swapped in after
// a path was checked cannot lead out of the data directory. The races are
// played deterministically: check, swap, then open.
#include "confined.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace aidbd {
namespace {

namespace fs = std::filesystem;

class ConfinedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("aidb-confined-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_ / "data" / "sub");
    fs::create_directories(base_ / "outside");
    Write(base_ / "data" / "sub" / "good.snap", "inside");
    Write(base_ / "outside" / "secret.snap", "outside");
    root_ = UniqueFd(::open((base_ / "data").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
  }
  void TearDown() override { fs::remove_all(base_); }

  static void Write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
  static std::string Read(int fd) {
    char buf[64];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  fs::path data() const { return base_ / "data"; }
  fs::path outside() const { return base_ / "outside"; }

  fs::path base_;
  UniqueFd root_;
};

TEST_F(ConfinedTest, OpensAPlainFileBelowTheRoot) {
  UniqueFd f(OpenBeneath(root_.get(), "sub/good.snap", O_RDONLY));
  ASSERT_TRUE(f.valid()) << ConfinedError(f.get());
  EXPECT_EQ(Read(f.get()), "inside");
}

TEST_F(ConfinedTest, RefusesPathsLeadingOut) {
  EXPECT_EQ(OpenBeneath(root_.get(), "../outside/secret.snap", O_RDONLY), -EXDEV);
  EXPECT_EQ(OpenBeneath(root_.get(), (outside() / "secret.snap").string(), O_RDONLY), -EXDEV);
  EXPECT_EQ(OpenBeneath(root_.get(), "", O_RDONLY), -EXDEV);
}

TEST_F(ConfinedTest, RefusesASymlinkAsTheLastComponentWhereverItLeads) {
  fs::create_symlink(outside() / "secret.snap", data() / "out.snap");
  fs::create_symlink(data() / "sub" / "good.snap", data() / "in.snap");
  EXPECT_EQ(OpenBeneath(root_.get(), "out.snap", O_RDONLY), -ELOOP);
  EXPECT_EQ(OpenBeneath(root_.get(), "in.snap", O_RDONLY), -ELOOP);
  // Creating through a dangling link is refused too.
  fs::create_symlink(outside() / "new.snap", data() / "dangling.snap");
  EXPECT_EQ(OpenBeneath(root_.get(), "dangling.snap", O_WRONLY | O_CREAT, 0644), -ELOOP);
  EXPECT_FALSE(fs::exists(outside() / "new.snap"));
}

TEST_F(ConfinedTest, RefusesASymlinkedFolderOnTheWay) {
  fs::create_symlink(outside(), data() / "escape");
  EXPECT_EQ(OpenBeneath(root_.get(), "escape/secret.snap", O_RDONLY), -ELOOP);
  std::string failed_at;
  EXPECT_EQ(OpenDirsBeneath(root_.get(), "escape/deeper", true, &failed_at), -ELOOP);
  EXPECT_EQ(failed_at, "escape");
  EXPECT_FALSE(fs::exists(outside() / "deeper"));
}

TEST_F(ConfinedTest, AFileSwappedForASymlinkAfterTheCheckIsRefusedAtOpen) {
  // The check a server makes first: a regular file, inside.
  struct stat st;
  ASSERT_EQ(::lstat((data() / "sub" / "good.snap").c_str(), &st), 0);
  ASSERT_TRUE(S_ISREG(st.st_mode));
  // The swap between check and open.
  fs::remove(data() / "sub" / "good.snap");
  fs::create_symlink(outside() / "secret.snap", data() / "sub" / "good.snap");
  EXPECT_EQ(OpenBeneath(root_.get(), "sub/good.snap", O_RDONLY), -ELOOP);
}

TEST_F(ConfinedTest, AFolderSwappedForASymlinkAfterTheCheckIsRefusedAtOpen) {
  ASSERT_TRUE(fs::is_directory(fs::symlink_status(data() / "sub")));
  fs::rename(data() / "sub", data() / "sub.old");
  fs::create_symlink(outside(), data() / "sub");
  std::string failed_at;
  EXPECT_EQ(OpenDirsBeneath(root_.get(), "sub", true, &failed_at), -ELOOP);
  EXPECT_EQ(OpenBeneath(root_.get(), "sub/secret.snap", O_RDONLY), -ELOOP);
}

TEST_F(ConfinedTest, AFolderSwappedAfterItWasOpenedIsNotFollowed) {
  std::string failed_at;
  UniqueFd dir(OpenDirsBeneath(root_.get(), "sub/new/deeper", true, &failed_at));
  ASSERT_TRUE(dir.valid()) << failed_at << ": " << ConfinedError(dir.get());
  EXPECT_TRUE(fs::is_directory(data() / "sub" / "new" / "deeper"));
  // The folder's name now leads out; its descriptor still names the folder
  // that was opened, and so does FdPath() for a path-based writer.
  fs::rename(data() / "sub", data() / "sub.old");
  fs::create_symlink(outside(), data() / "sub");
  std::string via = FdPath(dir.get()) + "/x.snap";
  int fd = ::open(via.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ::close(fd);
  EXPECT_TRUE(fs::exists(data() / "sub.old" / "new" / "deeper" / "x.snap"));
  EXPECT_FALSE(fs::exists(outside() / "new"));
  EXPECT_FALSE(fs::exists(outside() / "x.snap"));
}

TEST_F(ConfinedTest, ReadingThroughFdPathReadsTheFileThatWasOpened) {
  UniqueFd f(OpenBeneath(root_.get(), "sub/good.snap", O_RDONLY));
  ASSERT_TRUE(f.valid());
  fs::remove(data() / "sub" / "good.snap");
  fs::create_symlink(outside() / "secret.snap", data() / "sub" / "good.snap");
  int fd = ::open(FdPath(f.get()).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(Read(fd), "inside");
  ::close(fd);
}

TEST_F(ConfinedTest, OpenDirsBeneathWithoutCreateReportsAMissingFolder) {
  std::string failed_at;
  EXPECT_EQ(OpenDirsBeneath(root_.get(), "sub/missing", false, &failed_at), -ENOENT);
  EXPECT_EQ(failed_at, "missing");
  EXPECT_EQ(OpenDirsBeneath(root_.get(), "sub/good.snap", false, &failed_at), -ENOTDIR);
}

}  // namespace
}  // namespace aidbd
