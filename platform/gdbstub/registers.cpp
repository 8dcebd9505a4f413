#include "platform/gdbstub/registers.hpp"

#include <charconv>

namespace svmkit::platform::gdb {

namespace {

// Bounds on what a description may hold (QEMU's ppc64 one: about 250
// registers in five files).
constexpr std::size_t kMaxRegisters = 4096;
constexpr std::size_t kMaxIncludes = 64;
constexpr std::size_t kMaxName = 64;
constexpr unsigned kMaxRegnum = 65535;

// The value of attribute `attr` inside one element's text `element`
// (between '<' and '>'), or nullopt.
std::optional<std::string_view> attribute(std::string_view element, std::string_view attr) {
    std::size_t at = 0;
    while ((at = element.find(attr, at)) != std::string_view::npos) {
        const bool starts_word = at > 0 && (element[at - 1] == ' ' || element[at - 1] == '\t' ||
                                            element[at - 1] == '\n' || element[at - 1] == '\r');
        const std::size_t eq = at + attr.size();
        if (starts_word && element.substr(eq, 2) == "=\"") {
            const std::size_t end = element.find('"', eq + 2);
            if (end == std::string_view::npos)
                return std::nullopt;
            return element.substr(eq + 2, end - eq - 2);
        }
        at = eq;
    }
    return std::nullopt;
}

// Each element starting with `open` ("<reg", "<xi:include"): its text up
// to the closing '>'. An element without one is an error.
Result<std::vector<std::string_view>> elements(std::string_view xml, std::string_view open,
                                               std::string_view file) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while ((at = xml.find(open, at)) != std::string_view::npos) {
        const std::size_t after = at + open.size();
        if (after < xml.size() && xml[after] != ' ' && xml[after] != '\t' && xml[after] != '\n') {
            at = after; // another element whose name starts the same
            continue;
        }
        const std::size_t end = xml.find('>', after);
        if (end == std::string_view::npos)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: an unterminated {} element", file,
                        open);
        out.push_back(xml.substr(after, end - after));
        at = end;
    }
    return out;
}

} // namespace

Result<std::vector<std::string>> feature_includes(std::string_view target_xml) {
    SVM_TRY(found, elements(target_xml, "<xi:include", "target.xml"));
    if (found.size() > kMaxIncludes)
        return fail(ExitCode::qemu_failed, "gdbstub: target.xml includes {} files (at most {})",
                    found.size(), kMaxIncludes);
    std::vector<std::string> hrefs;
    for (std::string_view e : found) {
        const auto href = attribute(e, "href");
        if (!href || href->empty() || href->size() > kMaxName ||
            href->find_first_of(":/") != std::string_view::npos)
            return fail(ExitCode::qemu_failed,
                        "gdbstub: target.xml has an include without a plain file name");
        hrefs.emplace_back(*href);
    }
    return hrefs;
}

Result<void> RegisterMap::add_feature(std::string_view name, std::string_view xml) {
    SVM_TRY(regs, elements(xml, "<reg", name));
    for (std::string_view e : regs) {
        const auto reg = attribute(e, "name");
        if (!reg || reg->empty() || reg->size() > kMaxName)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: a register without a usable name",
                        name);
        if (const auto regnum = attribute(e, "regnum")) {
            unsigned n = 0;
            const auto [end, ec] =
                std::from_chars(regnum->data(), regnum->data() + regnum->size(), n);
            if (ec != std::errc() || end != regnum->data() + regnum->size() || n > kMaxRegnum)
                return fail(ExitCode::qemu_failed, "gdbstub: {}: register {} has regnum \"{}\"",
                            name, *reg, *regnum);
            next_ = n;
        }
        if (regs_.size() == kMaxRegisters || next_ > kMaxRegnum)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: more registers than svmkit reads",
                        name);
        // The first definition of a name wins (power-spr.xml repeats lr,
        // ctr and xer, which the core feature numbers).
        if (!number(*reg))
            regs_.emplace_back(std::string(*reg), next_);
        ++next_;
    }
    return {};
}

std::optional<unsigned> RegisterMap::number(std::string_view reg) const {
    for (const auto& [name, n] : regs_)
        if (name == reg)
            return n;
    return std::nullopt;
}

Result<unsigned> RegisterMap::require(std::string_view reg) const {
    if (auto n = number(reg))
        return *n;
    return fail(ExitCode::qemu_failed, "gdbstub: the target description has no register {}", reg);
}

} // namespace svmkit::platform::gdb
