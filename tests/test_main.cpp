// The main() of every GoogleTest binary. CONVNETS_NARROW_ISA=avx2 (CTest sets it for the avx2.* copies of
// the numeric tests) limits LibTorch's and oneDNN's CPU kernels to that instruction set. Both libraries read
// their setting once, on first use, so setting it here, before any test runs, is early enough.
// Unless OMP_NUM_THREADS says otherwise, each test binary computes on one thread: CTest runs tests side by
// side (one per core), and processes that spin several OpenMP threads each on the same cores run many times
// slower than one thread each.
//
// A skipped test fails unless CONVNETS_TESTS_MAY_SKIP=1 (CTest sets it for the gpu.* tests alone, which skip
// without a CUDA device): a GTEST_SKIP in a test that must run, or a SetUpTestSuite that failed (GoogleTest
// then reports its tests as skipped), is a failure. gtest_discover_tests gives every test CTest's
// SKIP_REGULAR_EXPRESSION "[  SKIPPED ]", which CTest obeys whatever the exit status, so where skipping is
// not allowed the result printer below reports a skip as a failure and never prints that marker.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

using ::testing::TestEventListener;
using ::testing::TestInfo;
using ::testing::TestPartResult;
using ::testing::UnitTest;

// GoogleTest's own printer for everything but skips: a skipped test is printed as failed, and the summary
// counts it among the failures.
class SkipsAreFailures : public TestEventListener {
 public:
  explicit SkipsAreFailures(TestEventListener* printer) : printer_(printer) {}
  void OnTestProgramStart(const UnitTest& u) override { printer_->OnTestProgramStart(u); }
  void OnTestIterationStart(const UnitTest& u, int i) override { printer_->OnTestIterationStart(u, i); }
  void OnEnvironmentsSetUpStart(const UnitTest& u) override { printer_->OnEnvironmentsSetUpStart(u); }
  void OnEnvironmentsSetUpEnd(const UnitTest& u) override { printer_->OnEnvironmentsSetUpEnd(u); }
  void OnTestSuiteStart(const ::testing::TestSuite& t) override { printer_->OnTestSuiteStart(t); }
  void OnTestStart(const TestInfo& t) override { printer_->OnTestStart(t); }
  void OnTestPartResult(const TestPartResult& r) override {
    if (r.skipped()) {
      std::printf("%s:%d: Failure\nskipped (only the tests that need a GPU may skip): %s\n", r.file_name(),
                  r.line_number(), r.message());
      return;
    }
    printer_->OnTestPartResult(r);
  }
  void OnTestEnd(const TestInfo& t) override {
    if (!t.result()->Skipped()) return printer_->OnTestEnd(t);
    skipped_.push_back(std::string(t.test_suite_name()) + "." + t.name());
    std::printf("[  FAILED  ] %s (skipped)\n", skipped_.back().c_str());
  }
  void OnTestSuiteEnd(const ::testing::TestSuite& t) override { printer_->OnTestSuiteEnd(t); }
  void OnEnvironmentsTearDownStart(const UnitTest& u) override { printer_->OnEnvironmentsTearDownStart(u); }
  void OnEnvironmentsTearDownEnd(const UnitTest& u) override { printer_->OnEnvironmentsTearDownEnd(u); }
  void OnTestIterationEnd(const UnitTest& u, int i) override {
    if (skipped_.empty()) return printer_->OnTestIterationEnd(u, i);
    std::printf("[==========] %d tests ran.\n[  FAILED  ] %zu skipped test(s), listed below:\n",
                u.test_to_run_count(), skipped_.size());
    for (const std::string& name : skipped_) std::printf("[  FAILED  ] %s\n", name.c_str());
    if (u.failed_test_count() > 0 || u.ad_hoc_test_result().Failed())
      std::printf("and %d failed test(s), %s\n", u.failed_test_count(),
                  u.ad_hoc_test_result().Failed() ? "and a failed SetUpTestSuite / TearDownTestSuite" : "");
    std::fflush(stdout);
  }
  void OnTestProgramEnd(const UnitTest& u) override { printer_->OnTestProgramEnd(u); }
  bool any_skipped() const { return !skipped_.empty(); }

 private:
  std::unique_ptr<TestEventListener> printer_;
  std::vector<std::string> skipped_;
};

}  // namespace

int main(int argc, char** argv) {
  if (const char* isa = std::getenv("CONVNETS_NARROW_ISA"); isa && *isa) {
    std::string upper = isa;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    setenv("ATEN_CPU_CAPABILITY", isa, 1);
    setenv("ONEDNN_MAX_CPU_ISA", upper.c_str(), 1);
  }
  setenv("OMP_NUM_THREADS", "1", /*overwrite=*/0);
  ::testing::InitGoogleTest(&argc, argv);
  const char* may_skip = std::getenv("CONVNETS_TESTS_MAY_SKIP");
  if (may_skip && std::string(may_skip) == "1") return RUN_ALL_TESTS();
  auto& listeners = UnitTest::GetInstance()->listeners();
  auto* printer = new SkipsAreFailures(listeners.Release(listeners.default_result_printer()));
  listeners.Append(printer);  // owned by GoogleTest from here on
  const int status = RUN_ALL_TESTS();
  return printer->any_skipped() ? 1 : status;
}
