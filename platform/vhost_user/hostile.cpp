#include "platform/vhost_user/hostile.hpp"

#include <algorithm>

#include <array>
#include <utility>

namespace svmkit::vhost_user {

namespace {

constexpr std::array<std::pair<HostileMode, std::string_view>, 10> kNames{{
    {HostileMode::none, "none"},
    {HostileMode::used_id_out_of_range, "used-id-out-of-range"},
    {HostileMode::duplicate_completion, "duplicate-completion"},
    {HostileMode::len_too_large, "len-too-large"},
    {HostileMode::used_idx_jump, "used-idx-jump"},
    {HostileMode::rewrite_bounce_after_completion, "rewrite-bounce-after-completion"},
    {HostileMode::rewrite_descriptors, "rewrite-descriptors"},
    {HostileMode::interrupt_storm, "interrupt-storm"},
    {HostileMode::no_access_platform, "no-access-platform"},
    {HostileMode::dma_outside_shared, "dma-outside-shared"},
}};

} // namespace

std::string_view hostile_mode_name(HostileMode mode) {
    for (const auto& [m, name] : kNames)
        if (m == mode)
            return name;
    return "unknown";
}

Result<HostileMode> parse_hostile_mode(std::string_view name) {
    for (const auto& [m, n] : kNames)
        if (n == name)
            return m;
    return fail(ExitCode::usage, "unknown hostile mode '{}' (modes: {})", name,
                hostile_mode_list());
}

Result<HostileSpec> parse_hostile_spec(std::string_view spec) {
    const std::size_t at = spec.find('@');
    SVM_TRY(mode, parse_hostile_mode(spec.substr(0, at)));
    HostileSpec out{mode, 0};
    if (at == std::string_view::npos)
        return out;
    const std::string_view count = spec.substr(at + 1);
    constexpr std::uint64_t kMaxAfter = 1'000'000'000;
    std::uint64_t n = 0;
    const bool digits =
        !count.empty() && count.size() <= 10 &&
        std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits)
        for (char c : count)
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (!digits || n > kMaxAfter)
        return fail(ExitCode::usage,
                    "hostile mode '{}': the count after @ must be a number of requests up to {}",
                    spec, kMaxAfter);
    if (mode == HostileMode::no_access_platform || mode == HostileMode::none)
        return fail(ExitCode::usage, "hostile mode '{}': {} takes no @N", spec,
                    hostile_mode_name(mode));
    out.after = n;
    return out;
}

std::string hostile_mode_list() {
    std::string out;
    for (const auto& [m, name] : kNames) {
        if (m == HostileMode::none)
            continue;
        if (!out.empty())
            out += ", ";
        out += name;
    }
    return out;
}

} // namespace svmkit::vhost_user
