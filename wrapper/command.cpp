#include "wrapper/command.hpp"

#include <fmt/format.h>

namespace svmkit::cli {

std::vector<DeprecatedAlias>& deprecated_aliases() {
    static std::vector<DeprecatedAlias> aliases;
    return aliases;
}

CLI::Option* add_json_flag(CLI::App* cmd, bool& json, const char* what) {
    return cmd->add_flag("--json", json,
                         fmt::format("{} as JSON on stdout (on stderr when '-o -' writes data "
                                     "there); a failure prints an svmkit-error-v1 object",
                                     what));
}

Result<void> require_value(const std::string& value, const char* option) {
    if (value.empty())
        return fail(ExitCode::usage, "{} is required", option);
    return {};
}

std::string exit_code_table() {
    std::string out = "Exit codes:\n";
    for (const ExitCodeInfo& e : kExitCodes)
        out += fmt::format("  {:>2}  {:<20} {}\n", static_cast<int>(e.code), e.name, e.meaning);
    return out;
}

} // namespace svmkit::cli
