// svmkit: build, sign, inspect and verify secure images.
//
// main parses with the command tree of cli_definition.cpp (each subcommand
// registers its own options in its cmd_*.cpp; the man pages and completion
// come from the same tree) and turns a failure into the one exit-code table
// (base/error.hpp) and, when the user asked for JSON, an error object.
#include "base/file_identity.hpp"
#include "wrapper/cli_definition.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fmt/format.h>

#ifndef SVMKIT_VERSION
#define SVMKIT_VERSION "0.0.0"
#endif

namespace {

using namespace svmkit;
using namespace svmkit::cli;

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::vector<std::string> command_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::App* sub : subcommands_of(app))
        names.push_back(sub->get_name());
    return names;
}

// The closest known name, when it is close enough to be a typo.
std::string closest(const std::string& word, const std::vector<std::string>& names) {
    std::string best;
    std::size_t best_distance = 3;
    for (const std::string& n : names)
        if (const std::size_t d = edit_distance(word, n); d < best_distance) {
            best = n;
            best_distance = d;
        }
    return best;
}

// `svmkit bild`: named, with the closest command suggested.
std::optional<int> check_command_name(const CLI::App& app, int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-')
        return std::nullopt;
    const std::string word = argv[1];
    const auto names = command_names(app);
    if (std::find(names.begin(), names.end(), word) != names.end())
        return std::nullopt;
    const std::string guess = closest(word, names);
    std::fprintf(
        stderr, "svmkit: usage error: unknown command '%s'%s\nRun 'svmkit help' for the list.\n",
        word.c_str(), guess.empty() ? "" : fmt::format("; did you mean '{}'?", guess).c_str());
    return static_cast<int>(ExitCode::usage);
}

// `svmkit help [CMD [SUBCMD]]`.
int print_help(CLI::App& app, const std::vector<std::string>& path) {
    CLI::App* target = &app;
    for (const std::string& name : path) {
        CLI::App* sub = nullptr;
        try {
            sub = target->get_subcommand(name);
        } catch (const CLI::OptionNotFound&) {
        }
        if (sub == nullptr) {
            const std::string guess = closest(name, command_names(*target));
            std::fprintf(stderr, "svmkit: usage error: help: unknown command '%s'%s\n",
                         name.c_str(),
                         guess.empty() ? "" : fmt::format("; did you mean '{}'?", guess).c_str());
            return static_cast<int>(ExitCode::usage);
        }
        target = sub;
    }
    std::fputs(target->help().c_str(), stdout);
    return 0;
}

void warn_deprecated() {
    for (const DeprecatedAlias& a : deprecated_aliases())
        if (a.option->count() > 0)
            std::fprintf(stderr, "svmkit: warning: %s is deprecated; use %s (CHANGELOG.md)\n",
                         a.name.c_str(), a.replacement.c_str());
}

int report_failure(const Command& command, const Error& error) {
    std::fprintf(stderr, "svmkit: error: %s\n", error.message.c_str());
    if (command.wants_json() && !json_printed()) {
        const ExitCodeInfo& info = kExitCodes[static_cast<int>(error.code)];
        Json j;
        j["schema"] = "svmkit-error-v1";
        j["command"] = command.app->get_name();
        j["exit_code"] = static_cast<int>(error.code);
        j["exit_name"] = info.name;
        j["error"] = error.message;
        print_json(j, human_stream());
    }
    return static_cast<int>(error.code);
}

int run(const Command& command) {
    Result<int> result = command.run();
    if (!result)
        return report_failure(command, result.error());
    // Reports go to stdout through stdio; a full disk or closed pipe shows up
    // here once rather than at every printf (why cert-err33-c is off).
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
        std::fprintf(stderr, "svmkit: error: writing to standard output failed\n");
        return static_cast<int>(ExitCode::io);
    }
    return *result;
}

} // namespace

int main(int argc, char** argv) {
    // A closed pipe on an output is an I/O error (exit 4), not a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    const IoRegistry::Scope io_scope;

    const std::unique_ptr<CliDefinition> cli = define_cli(SVMKIT_VERSION);
    CLI::App& app = cli->app;

    if (auto code = check_command_name(app, argc, argv))
        return *code;
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "svmkit: usage error: %s\nRun 'svmkit help' for usage.\n", e.what());
        return static_cast<int>(ExitCode::usage);
    }
    if (cli->help->parsed())
        return print_help(app, cli->help_path);
    warn_deprecated();
    for (const Command& command : cli->commands)
        if (command.app->parsed())
            return run(command);
    return static_cast<int>(ExitCode::usage);
}
