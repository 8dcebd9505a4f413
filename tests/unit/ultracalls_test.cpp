// The simulated ultravisor's ultracall dispatch (platform/ultracalls.*):
// numbers and return codes as on POWER; share calls only from a secure guest.
#include "platform/guest_memory.hpp"
#include "platform/ultracalls.hpp"

#include "guest/uv_abi.h"

#include <doctest/doctest.h>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 64ull << 20;

long call(Ultravisor& uv, std::uint64_t number, std::uint64_t r4 = 0, std::uint64_t r5 = 0) {
    svmkit_regs regs{};
    regs.r[3] = number;
    regs.r[4] = r4;
    regs.r[5] = r5;
    auto r = uv.ucall(regs);
    REQUIRE(r.has_value());
    return static_cast<long>(regs.r[3]);
}

} // namespace

TEST_CASE("ultracalls: a guest that is not secure cannot share or unshare") {
    auto memory = GuestMemory::create(kMemory);
    REQUIRE(memory.has_value());
    Ultravisor uv(*memory, EsmPolicy{});
    CHECK(call(uv, UV_SHARE_PAGE, 16, 1) == U_PERMISSION);
    CHECK(call(uv, UV_UNSHARE_PAGE, 16, 1) == U_PERMISSION);
    CHECK(call(uv, UV_UNSHARE_ALL_PAGES) == U_PERMISSION);
    CHECK(memory->count(PageState::shared) == 0);
    CHECK_FALSE(uv.secure());
}

TEST_CASE("ultracalls: unimplemented calls get U_FUNCTION") {
    auto memory = GuestMemory::create(kMemory);
    REQUIRE(memory.has_value());
    Ultravisor uv(*memory, EsmPolicy{});
    for (std::uint64_t n : {UV_WRITE_PATE, UV_PAGE_IN, UV_READ_MEM, 0x1234})
        CHECK(call(uv, n) == U_FUNCTION);
}

TEST_CASE("ultracalls: a refused ESM leaves the guest nothing but termination") {
    auto memory = GuestMemory::create(kMemory);
    REQUIRE(memory.has_value());
    Ultravisor uv(*memory, EsmPolicy{});
    // No device tree at 0x100000: refused (after securing everything).
    CHECK(call(uv, UV_ESM, 0x4000000, 0x100000) == U_P3);
    REQUIRE(uv.esm().has_value());
    CHECK(uv.esm()->failure == EsmFailure::bad_fdt);
    CHECK_FALSE(uv.secure());
    CHECK(call(uv, UV_ESM, 0x4000000, 0x100000) == U_PERMISSION); // only once
    CHECK(call(uv, UV_SHARE_PAGE, 16, 1) == U_PERMISSION);
    CHECK(call(uv, 0x1234) == U_PERMISSION);
    svmkit_regs regs{};
    regs.r[3] = UV_SVM_TERMINATE;
    auto r = uv.ucall(regs);
    REQUIRE(r.has_value());
    CHECK(r->leave_guest);
    CHECK(uv.terminated());
}
