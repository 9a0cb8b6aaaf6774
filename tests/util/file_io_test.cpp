#include "util/file_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "test_support.h"
#include "util/directory_lock.h"

namespace convnets {

TEST(FileIo, AtomicWriteReplacesAndLeavesNoTemporaries) {
  testing::ScratchDir dir;
  const auto path = dir.file("weights.bin");
  write_file_atomic(path, "first");
  write_file_atomic(path, std::string(100000, 'x'));
  EXPECT_EQ(read_file(path), std::string(100000, 'x'));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FileIo, MissingFileErrorNamesThePath) {
  try {
    read_file("/nonexistent/dir/model.pt");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.pt"), std::string::npos);
  }
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/model.pt", "x"), std::runtime_error);
}

// Only regular files are read: a FIFO with no writer used to hang the process (--finetune_from FIFO), and a
// directory gave std::bad_alloc. Both are now refused at once, naming the path and what it is.
TEST(FileIo, OnlyRegularFilesAreRead) {
  testing::ScratchDir dir;
  const std::string fifo = dir.file("weights.pt");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto error_of = [](const std::string& path) {
    try {
      read_file(path);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of(fifo).find("a FIFO, expected a regular file"), std::string::npos) << error_of(fifo);
  EXPECT_NE(error_of(fifo).find(fifo), std::string::npos);
  EXPECT_NE(error_of(dir.path().string()).find("a directory"), std::string::npos)
      << error_of(dir.path().string());
  EXPECT_NE(error_of("/dev/null").find("a device"), std::string::npos) << error_of("/dev/null");
}

// Output files inside model_dir are opened without following a link planted there (log.json ->
// ~/.bashrc), and configuration keys naming them must be plain names.
TEST(FileIo, OutputFilesDoNotFollowLinksAndNamesArePlain) {
  testing::ScratchDir dir;
  const std::string victim = dir.file("victim"), link = dir.file("log.json");
  write_file_atomic(victim, "precious\n");
  std::filesystem::create_symlink(victim, link);
  try {
    open_output_file(link, "a");
    ADD_FAILURE() << "a symbolic link was followed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(victim), "precious\n");
  std::FILE* f = open_output_file(dir.file("summary.csv"), "a");
  std::fputs("a,b\n", f);
  std::fclose(f);
  EXPECT_EQ(read_file(dir.file("summary.csv")), "a,b\n");
  for (const std::string bad : {"", ".", "..", "../../home/user/.bashrc", "logs/log.json", "/tmp/x"})
    EXPECT_THROW(check_plain_file_name(bad, "log_filename"), std::invalid_argument) << bad;
  EXPECT_NO_THROW(check_plain_file_name("log.json", "log_filename"));
  EXPECT_NO_THROW(check_plain_file_name("..log", "log_filename"));
}

// One training per model_dir: a second lock fails at once naming the holder's PID; the lock ends with its
// owner. (flock conflicts between two open descriptions even in one process, so one process can test it.)
TEST(DirectoryLock, SecondWriterFailsNamingTheHolder) {
  testing::ScratchDir dir;
  {
    DirectoryLock first(dir.path().string(), "training");
    try {
      DirectoryLock second(dir.path().string(), "training");
      ADD_FAILURE() << "two locks on one model_dir";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("in use by another training (PID " + std::to_string(::getpid())),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(DirectoryLock again(dir.path().string(), "training"));
}

// Temporaries of killed writes are removed when their PID is gone, kept while it runs.
TEST(FileIo, StaleTemporariesOfDeadProcessesAreRemoved) {
  testing::ScratchDir dir;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = dir.file(".checkpoint_e0001.pt.tmp." + std::to_string(child));
  const std::string live = dir.file(".checkpoint_e0002.pt.tmp." + std::to_string(::getpid()));
  const std::string other = dir.file("notes.tmp.12x");
  for (const auto& f : {dead, live, other}) write_file_atomic(f, "x");
  EXPECT_EQ(remove_stale_temporaries(dir.path().string()), 1);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live));
  EXPECT_TRUE(std::filesystem::exists(other));
}

}  // namespace convnets
