#include "samples/kernel/uv_misuse.h"

#include "guest/cmdline.h"
#include "guest/uv_abi.h"

#include <string.h>

namespace svmkit::sample {

using namespace svmkit::guest;

namespace {

// One ultracall the ultravisor must refuse, and how.
struct Attempt {
    const char* what; // why the call is wrong, for the console line
    uint64_t number;
    uint64_t r4;
    uint64_t r5;
    long expected;
};

const char* ucall_name(uint64_t number) {
    switch (number) {
    case UV_ESM:
        return "UV_ESM";
    case UV_SHARE_PAGE:
        return "UV_SHARE_PAGE";
    case UV_UNSHARE_PAGE:
        return "UV_UNSHARE_PAGE";
    case UV_UNSHARE_ALL_PAGES:
        return "UV_UNSHARE_ALL_PAGES";
    case UV_READ_MEM:
        return "UV_READ_MEM";
    default:
        return "ultracall";
    }
}

// Makes one call and says what came back; true when it was the expected code.
bool attempt(const UvMisuseContext& ctx, const Attempt& a) {
    // The code comes back in r3 as a 64-bit register: compare it as the
    // signed long the ABI defines, whatever else the call left in r4..r12.
    const long got = ctx.calls->ucall(a.number, a.r4, a.r5);
    const bool ok = got == a.expected;
    Console& con = *ctx.con;
    con.str("svmkit sample kernel: uv misuse: ").str(ucall_name(a.number));
    con.str(" r4=").hex(a.r4).str(" r5=").hex(a.r5).str(" (").str(a.what).str("): ");
    con.str(svmkit_uv_code_name(got)).str(", expected ").str(svmkit_uv_code_name(a.expected));
    con.str(ok ? ": ok" : ": UNEXPECTED").nl();
    return ok;
}

} // namespace

bool uv_misuse_requested(const char* bootargs, int bootargs_len) {
    const char* v = nullptr;
    size_t len = 0;
    return bootargs != nullptr && bootargs_len > 0 &&
           cmdline_param(bootargs, static_cast<size_t>(bootargs_len), "svmkit.uv_misuse", &v,
                         &len) &&
           len == 1 && v[0] == '1';
}

bool run_uv_misuse(const UvMisuseContext& ctx) {
    const uint64_t ram_pages = ctx.ram.end() >> kPageShift;
    const uint64_t private_pfn = ctx.private_gpa >> kPageShift;
    // Built here, not as a global table: the kernel keeps no relocated data.
    Attempt calls[8];
    unsigned n = 0;
    if (ctx.secure) {
        calls[n++] = {"ESM a second time", UV_ESM, SVMKIT_IMAGE_BASE, ctx.fdt, U_PERMISSION};
        calls[n++] = {"a private page never shared", UV_UNSHARE_PAGE, private_pfn, 1, U_PARAMETER};
        calls[n++] = {"the first page past RAM", UV_SHARE_PAGE, ram_pages, 1, U_PARAMETER};
        calls[n++] = {"two pages across RAM's end", UV_SHARE_PAGE, ram_pages - 1, 2, U_PARAMETER};
        calls[n++] = {"pfn + pages overflows", UV_SHARE_PAGE, ~uint64_t{0}, 2, U_PARAMETER};
        calls[n++] = {"zero pages", UV_SHARE_PAGE, private_pfn, 0, U_PARAMETER};
        if (!ctx.pool.empty())
            calls[n++] = {"the bounce pool, already shared", UV_SHARE_PAGE,
                          ctx.pool.base >> kPageShift, ctx.pool.size >> kPageShift, U_PARAMETER};
        calls[n++] = {"a call this ultravisor does not serve", UV_READ_MEM, 0, 0, U_FUNCTION};
    } else {
        calls[n++] = {"share from a normal guest", UV_SHARE_PAGE, private_pfn, 1, U_PERMISSION};
        calls[n++] = {"share past RAM from a normal guest", UV_SHARE_PAGE, ram_pages, 1,
                      U_PERMISSION};
        calls[n++] = {"unshare from a normal guest", UV_UNSHARE_PAGE, private_pfn, 1, U_PERMISSION};
        calls[n++] = {"unshare all from a normal guest", UV_UNSHARE_ALL_PAGES, 0, 0, U_PERMISSION};
    }
    unsigned unexpected = 0;
    for (unsigned i = 0; i < n; ++i)
        if (!attempt(ctx, calls[i]))
            ++unexpected;
    // A refused call changes nothing: still secure (or still not).
    const bool secure_now = ctx.calls->secure();
    Console& con = *ctx.con;
    con.str("svmkit sample kernel: uv misuse: ").dec(n - unexpected).str(" of ").dec(n);
    con.str(" calls refused as expected; ").str(secure_now ? "still secure" : "still not secure");
    if (secure_now != ctx.secure)
        con.str(": SECURE STATE CHANGED");
    con.nl();
    return unexpected == 0 && secure_now == ctx.secure;
}

} // namespace svmkit::sample
