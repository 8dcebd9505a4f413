// The whole svmkit command line as one CLI11 tree: the root, `help` and every
// subcommand each cmd_*.cpp registers. svmkit parses with it; svmkit-doc
// renders the man pages and the bash completion from it, so the three cannot
// disagree about an option.
#pragma once

#include "wrapper/command.hpp"

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

namespace svmkit::cli {

struct CliDefinition {
    CLI::App app{"Build, sign, inspect, verify and boot secure VM images for POWER PEF"};
    CLI::App* help = nullptr;
    std::vector<std::string> help_path; // `svmkit help CMD [SUBCMD]`
    std::vector<Command> commands;      // in help order
};

// Builds the tree; `version` is what --version prints after "svmkit ".
// CLI11 apps are not movable: the definition lives behind a pointer.
std::unique_ptr<CliDefinition> define_cli(const std::string& version);

// Queries the man pages and the completion share, so that both see the
// tree as --help shows it.

// The subcommands of `app` (each a command or a command group such as esm),
// in the order they were registered.
std::vector<const CLI::App*> subcommands_of(const CLI::App& app);
// A command group (esm, the root) rather than a command.
bool is_group(const CLI::App& app);
// The options --help lists (in a group; hidden ones have none), not positional.
std::vector<const CLI::Option*> listed_options(const CLI::App& app);
// The positional arguments.
std::vector<const CLI::Option*> positionals(const CLI::App& app);
// An option followed by a value (not a flag).
bool takes_value(const CLI::Option& option);
// An option (or positional) that may be given more than once.
bool repeatable(const CLI::Option& option);

} // namespace svmkit::cli
