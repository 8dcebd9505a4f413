// The vCPU's seccomp filter (platform/vcpu/seccomp_filter.cpp), run by the
// kernel: a child process installs it, with every "notify" verdict turned
// into EPERM so that a refused call returns instead of waiting for a
// listener, and tries the edges of each rule. It reports through a shared
// page (write and exit are refused too) and wakes the parent with the one
// futex the filter allows; the parent kills it.
#include "platform/vcpu/seccomp_filter.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <doctest/doctest.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace svmkit::platform::vcpu;

namespace {

constexpr std::uint64_t kPage = 0x10000;
constexpr std::uint64_t kRamPages = 4;
constexpr int kRwx = PROT_READ | PROT_WRITE | PROT_EXEC;

struct Shared {
    std::atomic<std::uint32_t> done{0};
    long results[32] = {};
    int count = 0;
};

// The call's result, or -errno.
long attempt(long r) {
    return r < 0 ? -errno : r;
}

struct Outcome {
    std::string name;
    long expected; // 0: allowed (any non-negative result), else -errno
};

const Outcome kCases[] = {
    {"mmap of all of RAM from fd A", 0},
    {"mmap of the last page from fd B", 0},
    {"mmap one page past the end", -EPERM},
    {"mmap one page below the base", -EPERM},
    {"mmap without PROT_EXEC", -EPERM},
    {"mmap MAP_PRIVATE", -EPERM},
    {"mmap from another fd", -EPERM},
    {"mmap with a length that wraps", -EPERM},
    {"mmap at an address above 4 GiB past RAM", -EPERM},
    {"futex wake on the channel word", 0},
    {"futex wake on another word", -EPERM},
    {"futex wake private on the channel word", -EPERM},
    {"getpid", -EPERM},
    {"close of a bad descriptor", -EBADF},
    {"sendmsg on another descriptor", -EPERM},
    {"munmap of RAM", -EPERM},
};

[[noreturn]] void run_child(Shared* shared, std::uint64_t base, int fd_a, int fd_b, int other) {
    FilterSpec spec;
    spec.guest_base = base;
    spec.memory_size = kRamPages * kPage;
    spec.futex_word = reinterpret_cast<std::uint64_t>(&shared->done);
    spec.setup_socket_fd = 1000;
    spec.memory_fds[0] = fd_a;
    spec.memory_fds[1] = fd_b;
    std::vector<sock_filter> code = build_filter(spec);
    for (sock_filter& f : code)
        if (f.code == (BPF_RET | BPF_K) && f.k == SECCOMP_RET_USER_NOTIF)
            f.k = SECCOMP_RET_ERRNO | EPERM;
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        ::_exit(2);
    auto* at = reinterpret_cast<std::byte*>(base);
    const auto map = [&](std::byte* where, std::uint64_t len, int prot, int flags, int fd) {
        return attempt(reinterpret_cast<long>(::mmap(where, len, prot, flags, fd, 0)));
    };
    const int shared_fixed = MAP_SHARED | MAP_FIXED;
    long* r = shared->results;
    int n = 0;
    r[n++] = map(at, kRamPages * kPage, kRwx, shared_fixed, fd_a);
    r[n++] = map(at + (kRamPages - 1) * kPage, kPage, kRwx, shared_fixed, fd_b);
    r[n++] = map(at + kPage, kRamPages * kPage, kRwx, shared_fixed, fd_a);
    r[n++] = map(at - kPage, kPage, kRwx, shared_fixed, fd_a);
    r[n++] = map(at, kPage, PROT_READ | PROT_WRITE, shared_fixed, fd_a);
    r[n++] = map(at, kPage, kRwx, MAP_PRIVATE | MAP_FIXED, fd_a);
    r[n++] = map(at, kPage, kRwx, shared_fixed, other);
    r[n++] = map(at + kPage, ~std::uint64_t{0} - kPage, kRwx, shared_fixed, fd_a);
    r[n++] = map(at + (std::uint64_t{1} << 32), kPage, kRwx, shared_fixed, fd_a);
    r[n++] = attempt(::syscall(SYS_futex, &shared->done, FUTEX_WAKE, 0, nullptr, nullptr, 0));
    r[n++] = attempt(::syscall(SYS_futex, &shared->count, FUTEX_WAKE, 0, nullptr, nullptr, 0));
    r[n++] =
        attempt(::syscall(SYS_futex, &shared->done, FUTEX_WAKE_PRIVATE, 0, nullptr, nullptr, 0));
    r[n++] = attempt(::syscall(SYS_getpid));
    r[n++] = attempt(::syscall(SYS_close, -1));
    r[n++] = attempt(::syscall(SYS_sendmsg, 3, nullptr, 0));
    r[n++] = attempt(::syscall(SYS_munmap, at, kPage));
    shared->count = n;
    shared->done.store(1);
    ::syscall(SYS_futex, &shared->done, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    for (;;)
        ::syscall(SYS_futex, &shared->done, FUTEX_WAIT, 1, nullptr, nullptr, 0);
}

} // namespace

TEST_CASE("vcpu filter: each rule's edges, as the kernel applies them") {
    void* page =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(page != MAP_FAILED);
    auto* shared = new (page) Shared();
    // Guest RAM: inside a reserved range with kGuard pages on each side, so
    // that a mapping a broken filter let through lands on nothing of ours.
    constexpr std::uint64_t kGuard = 8;
    // (Beyond it, 4 GiB more: one case maps there.)
    constexpr std::uint64_t kRegion =
        (std::uint64_t{1} << 32) + (kRamPages + 2 * kGuard + 1) * kPage;
    void* region =
        ::mmap(nullptr, kRegion, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(region != MAP_FAILED);
    const auto base =
        (reinterpret_cast<std::uint64_t>(region) + kGuard * kPage + kPage - 1) & ~(kPage - 1);
    const int fd_a = ::memfd_create("filter-test-a", MFD_CLOEXEC);
    const int fd_b = ::memfd_create("filter-test-b", MFD_CLOEXEC);
    const int other = ::memfd_create("filter-test-other", MFD_CLOEXEC);
    REQUIRE(fd_a >= 0);
    REQUIRE(fd_b >= 0);
    REQUIRE(other >= 0);
    REQUIRE(::ftruncate(fd_a, kRamPages * kPage) == 0);
    REQUIRE(::ftruncate(fd_b, kRamPages * kPage) == 0);
    REQUIRE(::ftruncate(other, kRamPages * kPage) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        run_child(shared, base, fd_a, fd_b, other);
    // A child that never reports (a broken filter can make it hang or die)
    // fails the test after a while instead of hanging it.
    bool reported = false;
    for (int ticks = 0; ticks < 2000 && !reported; ++ticks) {
        timespec tick{0, 10'000'000};
        ::syscall(SYS_futex, &shared->done, FUTEX_WAIT, 0, &tick, nullptr, 0);
        reported = shared->done.load() != 0;
        if (!reported && ::waitpid(pid, nullptr, WNOHANG) == pid)
            break;
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    REQUIRE_MESSAGE(reported, "the filtered child did not report within 20 s");
    REQUIRE(shared->count == static_cast<int>(std::size(kCases)));
    for (std::size_t i = 0; i < std::size(kCases); ++i) {
        CAPTURE(kCases[i].name);
        const long got = shared->results[i];
        if (kCases[i].expected == 0)
            CHECK(got >= 0);
        else
            CHECK(got == kCases[i].expected);
    }
    ::close(fd_a);
    ::close(fd_b);
    ::close(other);
    ::munmap(region, kRegion);
    ::munmap(page, sizeof(Shared));
}
