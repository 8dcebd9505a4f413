// The bash completion script for svmkit, generated from the CLI11 tree the
// command line parses with (wrapper/cli_definition.hpp). It is a static
// script, not one that runs svmkit at each TAB: completing costs no process,
// works for an svmkit that is not on PATH yet, and still cannot drift from
// the options, because it is rebuilt with them (docs/install.md).
#pragma once

#include "base/error.hpp"

#include <CLI/CLI.hpp>
#include <string>

namespace svmkit::cli {

// The script: completes subcommand names (also after `svmkit help`), the
// options --help lists, and file names for option values and arguments.
// Fails (usage) for a command or option name that is not a plain word.
Result<std::string> bash_completion(const CLI::App& root);

} // namespace svmkit::cli
