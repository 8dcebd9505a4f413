// The sample kernel's ultracall misuse (samples/kernel/uv_misuse.*), compiled
// here from the source the kernel links: against the platform's real
// ultravisor it reports every call refused as expected; against an
// ultravisor that answers wrongly, or a secure state that changes under it,
// it reports UNEXPECTED and fails (the kernel then exits 25). The secure
// guest against the real ultravisor is tests/e2e/hostile_hypervisor_test.sh.
#include "samples/kernel/uv_misuse.cpp" // NOLINT(bugprone-suspicious-include)

#include "platform/guest_memory.hpp"
#include "platform/ultracalls.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace svmkit;
using svmkit::guest::Range;

namespace {

// What the gates reach: a real ultravisor, or a scripted wrong one.
struct Platform {
    platform::Ultravisor* uv = nullptr;
    long wrong_answer = 0;           // without uv: the answer to every ucall...
    bool documented_answers = false; // ...or, instead, the documented answer to each
    bool secure = false;             // MSR[S]
    bool esm_flips_secure = false;   // UV_ESM changes MSR[S] (and returns)
    std::string console;
    std::vector<std::uint64_t> calls;
};
Platform* g_platform = nullptr;

long test_ucall(svmkit_regs* r) {
    g_platform->calls.push_back(r->r[3]);
    if (g_platform->esm_flips_secure && r->r[3] == UV_ESM)
        g_platform->secure = !g_platform->secure;
    if (g_platform->uv == nullptr) {
        long answer = g_platform->wrong_answer;
        if (g_platform->documented_answers)
            answer = r->r[3] == UV_ESM        ? U_PERMISSION
                     : r->r[3] == UV_READ_MEM ? U_FUNCTION
                                              : U_PARAMETER;
        r->r[3] = static_cast<std::uint64_t>(answer);
        return answer;
    }
    auto res = g_platform->uv->ucall(*r);
    REQUIRE(res.has_value());
    return static_cast<long>(r->r[3]);
}

long test_hcall(svmkit_regs* r) {
    REQUIRE(r->r[3] == H_PUT_TERM_CHAR);
    for (std::uint64_t i = 0; i < r->r[5]; ++i)
        g_platform->console += static_cast<char>((r->r[6 + i / 8] >> (56 - 8 * (i % 8))) & 0xff);
    return H_SUCCESS;
}

std::uint64_t test_mfmsr() {
    return SVMKIT_MSR_SF | SVMKIT_MSR_LE | (g_platform->secure ? SVMKIT_MSR_S : 0);
}

constexpr svmkit_gates kGates{test_ucall, test_hcall, test_mfmsr};
constexpr std::uint64_t kRam = 64ull << 20;

bool run(Platform& p, bool secure, Range pool = {}) {
    g_platform = &p;
    p.secure = secure;
    guest::Calls calls(&kGates);
    guest::Console con(calls);
    sample::UvMisuseContext ctx{.calls = &calls,
                                .con = &con,
                                .secure = secure,
                                .fdt = 0x3ff0000,
                                .ram = Range{0, kRam},
                                .pool = pool,
                                .private_gpa = 0x20f000};
    const bool ok = sample::run_uv_misuse(ctx);
    g_platform = nullptr;
    return ok;
}

int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
        ++n;
    return n;
}

bool requested(const std::string& cmdline) {
    return sample::uv_misuse_requested(cmdline.data(), static_cast<int>(cmdline.size()));
}

} // namespace

TEST_CASE("uv misuse: a normal guest is refused every share call by the real ultravisor") {
    auto memory = platform::GuestMemory::create(kRam);
    REQUIRE(memory.has_value());
    platform::Ultravisor uv(*memory, platform::EsmPolicy{});
    Platform p;
    p.uv = &uv;
    CHECK(run(p, false));
    CHECK(count(p.console, ": U_PERMISSION, expected U_PERMISSION: ok\n") == 4);
    CHECK(count(p.console, "UNEXPECTED") == 0);
    CHECK(p.console.find("4 of 4 calls refused as expected; still not secure\n") !=
          std::string::npos);
    // UV_ESM is a legitimate request from a normal guest: never made here.
    CHECK(std::find(p.calls.begin(), p.calls.end(), UV_ESM) == p.calls.end());
    CHECK(memory->count(platform::PageState::shared) == 0);
    CHECK_FALSE(uv.secure());
}

TEST_CASE("uv misuse: an ultravisor that accepts the calls is reported, not believed") {
    Platform p;
    p.wrong_answer = U_SUCCESS;
    CHECK_FALSE(run(p, true, Range{0x3bf0000, 4 << 20}));
    // Eight calls, the pool's share included; every one answered wrongly.
    CHECK(p.calls.size() == 8);
    CHECK(count(p.console, ": U_SUCCESS, expected U_P") == 8 - 1);
    CHECK(count(p.console, ": U_SUCCESS, expected U_FUNCTION: UNEXPECTED") == 1);
    CHECK(count(p.console, "UNEXPECTED\n") == 8);
    CHECK(p.console.find("0 of 8 calls refused as expected; still secure\n") != std::string::npos);

    Platform q;
    q.wrong_answer = U_PARAMETER; // right for most, wrong for ESM and the unknown call
    CHECK_FALSE(run(q, true));
    CHECK(q.calls.size() == 7); // no pool: no pool share
    CHECK(count(q.console, "UNEXPECTED\n") == 2);
    CHECK(q.console.find("(ESM a second time): U_PARAMETER, expected U_PERMISSION: UNEXPECTED") !=
          std::string::npos);
    CHECK(q.console.find("5 of 7 calls refused") != std::string::npos);

    Platform r;
    r.wrong_answer = U_PARAMETER; // a normal guest must get U_PERMISSION
    CHECK_FALSE(run(r, false));
    CHECK(count(r.console, "UNEXPECTED\n") == 4);
}

TEST_CASE("uv misuse: a secure state that changes under the calls fails the run") {
    Platform right;
    right.documented_answers = true;
    CHECK(run(right, true, Range{0x3bf0000, 4 << 20}));
    CHECK(right.console.find("8 of 8 calls refused as expected; still secure\n") !=
          std::string::npos);

    Platform p;
    p.documented_answers = true;
    p.esm_flips_secure = true; // every answer right, but ESM turned MSR[S] off
    CHECK_FALSE(run(p, true));
    CHECK(count(p.console, "UNEXPECTED") == 0);
    CHECK(p.console.find("7 of 7 calls refused as expected; still not secure: SECURE STATE "
                         "CHANGED\n") != std::string::npos);
}

TEST_CASE("uv misuse: only svmkit.uv_misuse=1 asks for it") {
    CHECK(requested("console=hvc0 svmkit.uv_misuse=1"));
    CHECK(requested("svmkit.uv_misuse=0 svmkit.uv_misuse=1 svm=on"));
    CHECK_FALSE(requested(""));
    CHECK_FALSE(requested("console=hvc0 svm=on"));
    CHECK_FALSE(requested("svmkit.uv_misuse=0"));
    CHECK_FALSE(requested("svmkit.uv_misuse=11"));
    CHECK_FALSE(requested("svmkit.uv_misuse="));
    CHECK_FALSE(requested("svmkit.uv_misuse"));
    CHECK_FALSE(requested("svmkit.uv_misuse=1 svmkit.uv_misuse=0")); // the last one counts
    CHECK_FALSE(sample::uv_misuse_requested(nullptr, 0));
}
