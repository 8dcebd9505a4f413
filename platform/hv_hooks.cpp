#include "platform/hv_hooks.hpp"

#include "base/checked.hpp"
#include "format/manifest.hpp"
#include "signer/signer.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <functional>
#include <unistd.h>

namespace svmkit::platform {

namespace {

// Enough to locate a leak; the count is always complete.
constexpr std::size_t kMaxScanAddresses = 16;

std::optional<std::uint64_t> parse_number(std::string_view s) {
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s.remove_prefix(2);
        base = 16;
    }
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

std::optional<std::vector<std::byte>> parse_hex(std::string_view s) {
    if (s.empty() || s.size() % 2 != 0)
        return std::nullopt;
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < s.size(); i += 2) {
        std::uint8_t b = 0;
        const auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 2, b, 16);
        if (ec != std::errc{} || end != s.data() + i + 2)
            return std::nullopt;
        out.push_back(static_cast<std::byte>(b));
    }
    return out;
}

std::optional<HvEvent> parse_event(std::string_view s) {
    for (HvEvent e : {HvEvent::loaded, HvEvent::esm_start, HvEvent::esm_done, HvEvent::esm_failed,
                      HvEvent::exit, HvEvent::segments_placed, HvEvent::loader_unshared})
        if (hv_event_name(e) == s)
            return e;
    return std::nullopt;
}

// The hook's range inside the hypervisor's view, or nothing when it reaches
// outside guest RAM.
std::optional<std::span<std::byte>> window(const HvHookContext& ctx, std::uint64_t gpa,
                                           std::uint64_t len) {
    const auto end = checked_add(gpa, len);
    if (!end || *end > ctx.memory.size())
        return std::nullopt;
    return ctx.memory.subspan(gpa, len);
}

// Every line starts with the event and the action; the rest is the action's.
HvHookJson prefix(const HvHook& h, std::string_view action) {
    HvHookJson j;
    j["event"] = hv_event_name(h.at);
    j["action"] = action;
    return j;
}

// The parts of the memfd that hold pages ([start, end) byte ranges): the rest
// are holes (never written, or wiped secure pages) and read as zeros. Reading
// a hole through the mapping would allocate it; the scan skips them. Without
// an fd (or if the file cannot say), all of it.
std::vector<std::pair<std::uint64_t, std::uint64_t>> data_extents(const HvHookContext& ctx) {
    const auto size = static_cast<off_t>(ctx.memory.size());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    if (ctx.memory_fd < 0)
        return {{0, ctx.memory.size()}};
    for (off_t at = 0; at < size;) {
        const off_t data = ::lseek(ctx.memory_fd, at, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) // no data after `at`
                break;
            return {{0, ctx.memory.size()}};
        }
        off_t hole = ::lseek(ctx.memory_fd, data, SEEK_HOLE);
        if (hole < 0 || hole > size)
            hole = size;
        out.emplace_back(static_cast<std::uint64_t>(data), static_cast<std::uint64_t>(hole));
        at = hole;
    }
    return out;
}

std::string run_scan(const HvHook& h, const HvHookContext& ctx) {
    std::uint64_t found = 0;
    std::vector<std::uint64_t> where;
    const auto* base = ctx.memory.data();
    const std::boyer_moore_horspool_searcher searcher(h.bytes.begin(), h.bytes.end());
    for (const auto& [start, end] : data_extents(ctx)) {
        // A match may run into the zeros of the hole after the extent.
        const std::uint64_t stop =
            std::min<std::uint64_t>(end + h.bytes.size() - 1, ctx.memory.size());
        const auto* last = base + stop;
        for (auto it = base + start;;) {
            it = std::search(it, last, searcher);
            if (it == last)
                break;
            ++found;
            if (where.size() < kMaxScanAddresses)
                where.push_back(static_cast<std::uint64_t>(it - base));
            ++it;
        }
    }
    HvHookJson j = prefix(h, "scan");
    j["pattern"] = format::hex(h.bytes);
    j["found"] = found;
    j["at"] = where;
    return hv_hook_json_line(j);
}

std::string run_read(const HvHook& h, const HvHookContext& ctx) {
    HvHookJson j = prefix(h, "read");
    j["gpa"] = h.gpa;
    j["len"] = h.len;
    const auto w = window(ctx, h.gpa, h.len);
    if (!w) {
        j["error"] = "outside guest RAM";
        return hv_hook_json_line(j);
    }
    j["nonzero"] =
        std::count_if(w->begin(), w->end(), [](std::byte b) { return b != std::byte{0}; });
    j["sha256"] = format::hex(signer::digest(signer::DigestAlgorithm::sha256, *w));
    return hv_hook_json_line(j);
}

std::string run_write(const HvHook& h, const HvHookContext& ctx) {
    HvHookJson j = prefix(h, "write");
    j["gpa"] = h.gpa;
    const auto w = window(ctx, h.gpa, h.bytes.size());
    if (!w) {
        j["error"] = "outside guest RAM";
        return hv_hook_json_line(j);
    }
    std::copy(h.bytes.begin(), h.bytes.end(), w->begin());
    j["bytes"] = h.bytes.size();
    return hv_hook_json_line(j);
}

std::string run_shared(const HvHook& h, const HvHookContext& ctx) {
    HvHookJson j = prefix(h, "shared");
    j["ranges"] = HvHookJson::array();
    for (const auto& [pfn, pages] : ctx.shared)
        j["ranges"].push_back({{"gpa", pfn << 16}, {"size", pages << 16}});
    return hv_hook_json_line(j);
}

// What any process may try against another: open /proc/<pid>/mem and read
// guest RAM at the guest's own virtual address. The machine makes itself
// non-dumpable and this process holds no capabilities, so the kernel refuses.
std::string run_proc_mem(const HvHook& h, const HvHookContext& ctx) {
    const std::string path = fmt::format("/proc/{}/mem", ctx.guest_pid);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::string error;
    bool readable = false;
    if (fd < 0) {
        error = std::strerror(errno);
    } else {
        std::byte buf[64];
        const ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(ctx.guest_va_base));
        if (n > 0)
            readable = true;
        else
            error = n < 0 ? std::strerror(errno) : "end of file";
        ::close(fd);
    }
    HvHookJson j = prefix(h, "proc-mem");
    j["path"] = path;
    j["readable"] = readable;
    j["error"] = error;
    return hv_hook_json_line(j);
}

} // namespace

std::string hv_hook_json_line(const HvHookJson& j) {
    return j.dump(-1, ' ', false, HvHookJson::error_handler_t::replace);
}

Result<HvHook> parse_hv_hook(std::string_view spec) {
    auto bad = [&](std::string_view why) -> Result<HvHook> {
        return fail(ExitCode::usage, "--hv-hook {}: {}", spec, why);
    };
    const auto colon = spec.find(':');
    if (colon == std::string_view::npos)
        return bad("expected EVENT:ACTION");
    HvHook h;
    h.spec = std::string(spec);
    const auto event = parse_event(spec.substr(0, colon));
    if (!event)
        return bad("unknown event (loaded, esm-start, esm-done, esm-failed, exit)");
    h.at = *event;
    const std::string_view action = spec.substr(colon + 1);
    const auto eq = action.find('=');
    const std::string_view name = action.substr(0, eq);
    const std::string_view arg = eq == std::string_view::npos ? "" : action.substr(eq + 1);
    if (name == "scan") {
        auto bytes = parse_hex(arg);
        if (!bytes)
            return bad("scan wants =HEX (an even number of hex digits)");
        h.action = HvHook::Action::scan;
        h.bytes = std::move(*bytes);
    } else if (name == "read") {
        const auto plus = arg.find('+');
        const auto gpa = parse_number(arg.substr(0, plus));
        const auto len =
            plus == std::string_view::npos ? std::nullopt : parse_number(arg.substr(plus + 1));
        if (!gpa || !len || *len == 0)
            return bad("read wants =GPA+LEN");
        h.action = HvHook::Action::read;
        h.gpa = *gpa;
        h.len = *len;
    } else if (name == "write") {
        const auto sep = arg.find(':');
        const auto gpa = parse_number(arg.substr(0, sep));
        auto bytes = sep == std::string_view::npos ? std::nullopt : parse_hex(arg.substr(sep + 1));
        if (!gpa || !bytes)
            return bad("write wants =GPA:HEX");
        h.action = HvHook::Action::write;
        h.gpa = *gpa;
        h.bytes = std::move(*bytes);
    } else if (name == "shared" && arg.empty()) {
        h.action = HvHook::Action::shared;
    } else if (name == "proc-mem" && arg.empty()) {
        h.action = HvHook::Action::proc_mem;
    } else {
        return bad("unknown action (scan=HEX, read=GPA+LEN, write=GPA:HEX, shared, proc-mem)");
    }
    return h;
}

std::string run_hv_hook(const HvHook& hook, const HvHookContext& ctx) {
    switch (hook.action) {
    case HvHook::Action::scan:
        return run_scan(hook, ctx);
    case HvHook::Action::read:
        return run_read(hook, ctx);
    case HvHook::Action::write:
        return run_write(hook, ctx);
    case HvHook::Action::shared:
        return run_shared(hook, ctx);
    case HvHook::Action::proc_mem:
        return run_proc_mem(hook, ctx);
    }
    return {};
}

} // namespace svmkit::platform
