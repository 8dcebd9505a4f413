#include "wrapper/commands.hpp"

#include <cctype>
#include <charconv>

namespace svmkit::cli {

Result<std::uint64_t> parse_u64(const std::string& text, const std::string& option) {
    std::string_view s = text;
    int base = 10;
    if (s.starts_with("0x") || s.starts_with("0X")) {
        s.remove_prefix(2);
        base = 16;
    }
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
        return fail(ExitCode::usage, "{}: '{}' is not a number", option, text);
    return v;
}

Result<std::uint64_t> parse_size(const std::string& text, const std::string& option) {
    std::string digits = text;
    std::uint64_t unit = 1;
    if (!digits.empty()) {
        switch (std::toupper(static_cast<unsigned char>(digits.back()))) {
        case 'K':
            unit = 1ull << 10;
            break;
        case 'M':
            unit = 1ull << 20;
            break;
        case 'G':
            unit = 1ull << 30;
            break;
        default:
            break;
        }
        if (unit != 1)
            digits.pop_back();
    }
    SVM_TRY(v, parse_u64(digits, option));
    if (v > UINT64_MAX / unit)
        return fail(ExitCode::usage, "{}: '{}' is too large", option, text);
    return v * unit;
}

} // namespace svmkit::cli
