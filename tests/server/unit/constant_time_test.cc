// ConstantTimeEquals (src/server/util.h) compares API keys. Its claim, shown
// by construction rather than by timing: it reads every byte of the
// configured key (and the same positions of the given one) whatever the
// position of the first difference, so the work does not depend on how much
// of a guess is right. Each byte in turn is placed on a page the test made
// unreadable: the comparison must fault on it (the SIGSEGV handler records
// the fault and opens the page, and the read is retried) even when the
// strings differ at byte 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "util.h"

namespace {

char* g_guard = nullptr;  // the unreadable page
size_t g_page = 0;
volatile sig_atomic_t g_faults = 0;

void OnFault(int, siginfo_t* info, void*) {
  char* at = static_cast<char*>(info->si_addr);
  if (g_guard == nullptr || at < g_guard || at >= g_guard + g_page) {
    signal(SIGSEGV, SIG_DFL);  // a real crash: let it happen
    return;
  }
  g_faults = g_faults + 1;
  mprotect(g_guard, g_page, PROT_READ | PROT_WRITE);
}

class ConstantTimeEqualsGuarded : public ::testing::Test {
 protected:
  void SetUp() override {
    g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, 2 * g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    base_ = static_cast<char*>(m);
    g_guard = base_ + g_page;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGSEGV, &sa, &old_), 0);
  }
  void TearDown() override {
    sigaction(SIGSEGV, &old_, nullptr);
    g_guard = nullptr;
    munmap(base_, 2 * g_page);
  }
  // `s` copied so that its byte `i` is the first byte of the guarded page,
  // which is then made unreadable.
  std::string_view Place(const std::string& s, size_t i) {
    mprotect(g_guard, g_page, PROT_READ | PROT_WRITE);
    char* start = g_guard - i;
    std::memcpy(start, s.data(), s.size());
    mprotect(g_guard, g_page, PROT_NONE);
    g_faults = 0;
    return std::string_view(start, s.size());
  }
  char* base_ = nullptr;
  struct sigaction old_;
};

const std::string kKey = "k3y-0123456789abcdef-0123456789ABCDEF";

TEST_F(ConstantTimeEqualsGuarded, ReadsEveryByteOfTheKeyWhereverTheGuessDiffers) {
  const std::string wrong_first = "X" + kKey.substr(1);
  const std::string wrong_last = kKey.substr(0, kKey.size() - 1) + "X";
  const std::string all_wrong(kKey.size(), '#');
  for (size_t i = 0; i < kKey.size(); ++i) {
    for (const std::string* guess : {&wrong_first, &wrong_last, &all_wrong, &kKey}) {
      std::string_view expected = Place(kKey, i);
      bool eq = aidbd::ConstantTimeEquals(*guess, expected);
      EXPECT_EQ(eq, guess == &kKey);
      EXPECT_EQ(g_faults, 1) << "byte " << i << " of the key was not read (guess " << *guess << ")";
    }
  }
}

TEST_F(ConstantTimeEqualsGuarded, ReadsEveryByteOfTheGuessWithinTheKeyLength) {
  std::string wrong_first = "X" + kKey.substr(1);
  for (size_t i = 0; i < kKey.size(); ++i) {
    std::string_view given = Place(wrong_first, i);
    EXPECT_FALSE(aidbd::ConstantTimeEquals(given, kKey));
    EXPECT_EQ(g_faults, 1) << "byte " << i << " of the guess was not read";
  }
}

TEST_F(ConstantTimeEqualsGuarded, ShorterAndLongerGuessesStillReadTheWholeKey) {
  for (std::string guess : {std::string(), kKey.substr(0, 1), kKey.substr(0, kKey.size() - 1),
                            kKey + "x", std::string("X")}) {
    for (size_t i : {size_t{0}, kKey.size() / 2, kKey.size() - 1}) {
      std::string_view expected = Place(kKey, i);
      EXPECT_FALSE(aidbd::ConstantTimeEquals(guess, expected));
      EXPECT_EQ(g_faults, 1) << "byte " << i << " not read for a guess of " << guess.size();
    }
  }
}

TEST(ConstantTimeEquals, Results) {
  EXPECT_TRUE(aidbd::ConstantTimeEquals("", ""));
  EXPECT_TRUE(aidbd::ConstantTimeEquals(kKey, kKey));
  EXPECT_FALSE(aidbd::ConstantTimeEquals("", kKey));
  EXPECT_FALSE(aidbd::ConstantTimeEquals(kKey, ""));
  EXPECT_FALSE(aidbd::ConstantTimeEquals(kKey + std::string(1, '\0'), kKey));
  EXPECT_FALSE(aidbd::ConstantTimeEquals(std::string_view(kKey.data(), 5), kKey));
  for (size_t i = 0; i < kKey.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string g = kKey;
      g[i] = static_cast<char>(g[i] ^ (1 << bit));
      EXPECT_FALSE(aidbd::ConstantTimeEquals(g, kKey)) << i << " " << bit;
    }
  }
}

}  // namespace
