// Guest memory of the simulated machine: securing, sharing and unsharing pages
// really moves them between the two backings, and a separate process holding
// only the hypervisor-visible memfd never sees secure contents.
#include "platform/guest_memory.hpp"

#include "guest/layout.h"
#include "test_support.hpp"

#include <cstring>
#include <doctest/doctest.h>
#include <string_view>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::string_view kCanary = "svmkit-canary-7f3a9c51e2d84b60";
constexpr std::uint64_t kSize = 16 * kGuestPageSize; // 1 MiB

// Counts occurrences of `needle` in what a process mapping only `fd` sees. The
// scan runs in a forked child that maps the memfd afresh, as the hypervisor
// process does, so the parent's mappings play no part.
int hypervisor_sees(int fd, std::uint64_t size, std::string_view needle) {
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        int hits = -1;
        if (p != MAP_FAILED) {
            std::string_view all(static_cast<const char*>(p), size);
            hits = 0;
            for (auto pos = all.find(needle); pos != std::string_view::npos;
                 pos = all.find(needle, pos + 1))
                ++hits;
        }
        (void)!::write(pipefd[1], &hits, sizeof hits);
        ::_exit(0);
    }
    ::close(pipefd[1]);
    int hits = -2;
    REQUIRE(::read(pipefd[0], &hits, sizeof hits) == sizeof hits);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return hits;
}

void put(GuestMemory& m, std::uint64_t gpa, std::string_view s) {
    REQUIRE(m.write(gpa, std::as_bytes(std::span(s.data(), s.size()))).has_value());
}

std::string get(GuestMemory& m, std::uint64_t gpa, std::size_t n) {
    std::string s(n, '\0');
    REQUIRE(m.read(gpa, std::as_writable_bytes(std::span(s.data(), s.size()))).has_value());
    return s;
}

} // namespace

TEST_CASE("guest memory: mapped at the fixed guest base, bounds checked") {
    auto m = GuestMemory::create(kSize);
    REQUIRE_MESSAGE(m.has_value(), m.error().message);
    CHECK(m->page_count() == 16);
    CHECK(*m->host_address(0) == SVMKIT_SIM_GUEST_VA_BASE);
    CHECK(*m->host_address(0x12345) == SVMKIT_SIM_GUEST_VA_BASE + 0x12345);
    test::check_error(m->host_address(kSize), ExitCode::malformed,
                      "guest address 0x100000 is outside guest RAM");
    CHECK(m->range(kSize - 8, 8).has_value());
    test::check_error(m->range(kSize - 8, 9), ExitCode::malformed,
                      "guest range [0xffff8, +0x9) is outside guest RAM (0x100000 bytes)");
    test::check_error(m->range(~0ull - 4, 8), ExitCode::malformed, // overflow
                      "guest range [0xfffffffffffffffb, +0x8) is outside guest RAM");
    CHECK(m->count(PageState::normal) == 16);
    test::check_error(GuestMemory::create(12345), ExitCode::usage,
                      "guest memory size 12345 must be a non-zero multiple of 64 KiB");
    // A second machine cannot take the same guest base.
    test::check_error(GuestMemory::create(kSize), ExitCode::io, "cannot map guest RAM at");
}

TEST_CASE("guest memory: a normal guest is visible to the hypervisor, a secure one is not") {
    auto m = GuestMemory::create(kSize);
    REQUIRE(m.has_value());
    put(*m, 3 * kGuestPageSize + 100, kCanary);
    put(*m, 9 * kGuestPageSize, kCanary);
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, kCanary) == 2);

    auto secured = m->secure_all();
    REQUIRE(secured.has_value());
    CHECK(*secured == 16);
    CHECK(m->count(PageState::secure) == 16);
    // The guest still sees its data at the same addresses...
    CHECK(get(*m, 3 * kGuestPageSize + 100, kCanary.size()) == kCanary);
    CHECK(get(*m, 9 * kGuestPageSize, kCanary.size()) == kCanary);
    // ...the hypervisor sees none of it, and new guest writes do not reach it.
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, kCanary) == 0);
    put(*m, 5 * kGuestPageSize, kCanary);
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, kCanary) == 0);
    test::check_error(m->secure_all(), ExitCode::usage, // ESM only once
                      "guest memory is already secure");
}

TEST_CASE("guest memory: sharing zeroes the page and exposes it, and unsharing takes it back") {
    auto m = GuestMemory::create(kSize);
    REQUIRE(m.has_value());
    put(*m, 4 * kGuestPageSize, kCanary);
    test::check_error(m->share(4, 1), ExitCode::usage, "page 0x4 is not secure"); // not yet
    REQUIRE(m->secure_all().has_value());

    REQUIRE(m->share(4, 2).has_value());
    CHECK(m->state(4) == PageState::shared);
    CHECK(m->state(5) == PageState::shared);
    CHECK(m->state(6) == PageState::secure);
    // The secure contents did not travel with the page.
    CHECK(get(*m, 4 * kGuestPageSize, kCanary.size()) == std::string(kCanary.size(), '\0'));
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, kCanary) == 0);

    // What the guest writes into a shared page, the hypervisor sees.
    const std::string_view msg = "bounce-buffer-payload";
    put(*m, 5 * kGuestPageSize + 64, msg);
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, msg) == 1);

    REQUIRE(m->unshare(5, 1).has_value());
    CHECK(m->state(5) == PageState::secure);
    CHECK(get(*m, 5 * kGuestPageSize + 64, msg.size()) == msg);  // contents kept
    CHECK(hypervisor_sees(m->hypervisor_fd(), kSize, msg) == 0); // and hidden again

    test::check_error(m->unshare(6, 1), ExitCode::usage, "page 0x6 is not shared");
    test::check_error(m->share(4, 1), ExitCode::usage, "page 0x4 is not secure"); // shared
    test::check_error(m->share(15, 2), ExitCode::malformed,
                      "page range 0xf+2 is outside guest RAM"); // past the end
    test::check_error(m->share(0, 0), ExitCode::malformed, "page range 0x0+0 is outside guest RAM");
}
