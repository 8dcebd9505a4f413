#include "platform/vhost_user/hostile.hpp"

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
