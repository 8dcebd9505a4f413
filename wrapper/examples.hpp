// Worked examples for each command's man page (EXAMPLES). svmkit-doc parses
// every one with the real option definitions before it writes a page
// (check_examples), so an example that stops being a valid command line
// stops the build.
#pragma once

#include "base/error.hpp"

#include <CLI/CLI.hpp>
#include <span>
#include <string_view>
#include <vector>

namespace svmkit::cli {

struct Example {
    std::string_view what;         // one sentence: what it does
    std::string_view command_line; // a whole `svmkit ...` line, shell-quoted
};

// The examples of the command at `path` ("svmkit", "svmkit build",
// "svmkit esm make"); empty for a command without any.
std::span<const Example> examples_for(std::string_view path);

// Every command path the table has examples for (each must name a command).
std::vector<std::string_view> example_paths();

// Checks the table against the tree `root` (svmkit's own, from
// define_cli): every command has examples, every example is a command line
// that parses and selects its command, and every path of the table names a
// command. Fails (usage) naming the first that does not.
Result<void> check_examples(CLI::App& root, std::string_view helper_dir);

// The placeholder examples use for where the helper programs and the
// sample guest kernel are installed (libexec/svmkit); svmkit-doc replaces it.
inline constexpr std::string_view kHelperDirPlaceholder = "@HELPERDIR@";

} // namespace svmkit::cli
