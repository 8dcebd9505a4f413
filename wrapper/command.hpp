// One svmkit subcommand: its options, registered by its own cmd_*.cpp (so
// help, man pages and completion come from one definition), and how to run
// it. main.cpp only collects them.
#pragma once

#include "base/error.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace svmkit::cli {

struct Command {
    CLI::App* app = nullptr;
    std::function<Result<int>()> run;
    // Set when the user asked for JSON: a failure then also prints an
    // svmkit-error-v1 object (docs/cli.md).
    std::function<bool()> wants_json = [] {
        return false;
    };
};

// An old spelling of an option, kept working but hidden from help; using
// it prints a deprecation warning naming the new one (CHANGELOG.md).
struct DeprecatedAlias {
    CLI::Option* option;
    std::string name;
    std::string replacement;
};
std::vector<DeprecatedAlias>& deprecated_aliases();

// Registers `old_name` as a hidden alias of an option stored in `target`.
template <typename T>
CLI::Option* add_alias(CLI::App* cmd, const std::string& old_name, T& target,
                       const std::string& replacement) {
    CLI::Option* opt = cmd->add_option(old_name, target)->group("");
    deprecated_aliases().push_back({opt, old_name, replacement});
    return opt;
}
inline CLI::Option* add_flag_alias(CLI::App* cmd, const std::string& old_name, bool& target,
                                   const std::string& replacement) {
    CLI::Option* opt = cmd->add_flag(old_name, target)->group("");
    deprecated_aliases().push_back({opt, old_name, replacement});
    return opt;
}

// The --json flag every command whose result a script reads has.
CLI::Option* add_json_flag(CLI::App* cmd, bool& json, const char* what = "Machine-readable result");

// Fails with a usage error when an option that has a deprecated alias (so
// cannot be ->required()) was given under neither name.
Result<void> require_value(const std::string& value, const char* option);

// The exit-code table as the help footer and README show it.
std::string exit_code_table();

// Every subcommand, in help order.
Command add_build_command(CLI::App& app);
Command add_keygen_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_verify_command(CLI::App& app);
Command add_extract_command(CLI::App& app);
Command add_tbs_command(CLI::App& app);
Command add_attach_command(CLI::App& app);
Command add_boot_command(CLI::App& app);
Command add_esm_command(CLI::App& app);
Command add_mkdisk_command(CLI::App& app);
Command add_load_command(CLI::App& app);

} // namespace svmkit::cli
