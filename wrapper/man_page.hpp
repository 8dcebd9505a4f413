// Man pages (roff, man(7) macros) for svmkit and each of its subcommands,
// rendered from the CLI11 tree the command line itself parses with
// (wrapper/cli_definition.hpp): NAME, SYNOPSIS, DESCRIPTION, COMMANDS (for
// a command group), OPTIONS, DEPRECATED OPTIONS, EXIT STATUS (base/error.hpp's
// kExitCodes), ENVIRONMENT (svmkit(1) only), EXAMPLES and SEE ALSO.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace svmkit::cli {

struct ManContext {
    std::string version;    // the page footer's "svmkit VERSION"
    std::string date;       // the page footer's date (may be empty)
    std::string doc_dir;    // where the docs are installed (share/doc/svmkit)
    std::string helper_dir; // where the helpers and the sample kernel are (libexec/svmkit)
};

// The apps from the root down to one command: {svmkit}, {svmkit, build},
// {svmkit, esm, make}.
using CommandChain = std::vector<const CLI::App*>;

// "svmkit", "svmkit-build", "svmkit-esm-make": the page's name (file NAME.1).
std::string man_page_name(const CommandChain& chain);

// "svmkit esm make": how the command is typed.
std::string command_path(const CommandChain& chain);

// The page's roff source.
std::string man_page(const CommandChain& chain, const ManContext& context);

// Text with the characters roff would interpret escaped: backslashes, every
// '-' (as \-, so that options print and copy as ASCII hyphen-minus) and a
// leading '.' or '\''.
std::string roff_escape(std::string_view text);

} // namespace svmkit::cli
