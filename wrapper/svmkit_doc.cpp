// svmkit-doc: writes svmkit's man pages and bash completion from the option
// definitions svmkit itself parses with (wrapper/cli_definition.hpp). The
// build runs it (wrapper/CMakeLists.txt); it is not installed.
//
//   svmkit-doc --version V --doc-dir DIR --helper-dir DIR --man-dir OUT --completion FILE
//
// One page per command, svmkit.1, svmkit-build.1, svmkit-esm.1,
// svmkit-esm-make.1, ...; the pages' date is $SOURCE_DATE_EPOCH's (none
// without it: the output depends on nothing but the sources). Every example
// is parsed first (check_examples); a failure writes nothing and exits with
// the code of base/error.hpp's table.
#include "base/output_file.hpp"
#include "wrapper/bash_completion.hpp"
#include "wrapper/cli_definition.hpp"
#include "wrapper/examples.hpp"
#include "wrapper/man_page.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <span>

namespace {

using namespace svmkit;
using namespace svmkit::cli;

struct DocOptions {
    ManContext context;
    std::string man_dir;
    std::string completion;
};

Result<void> write_text(const std::string& path, const std::string& text) {
    return write_output_file(path, std::as_bytes(std::span(text.data(), text.size())));
}

// SOURCE_DATE_EPOCH as YYYY-MM-DD (UTC), or nothing.
Result<std::string> page_date() {
    const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
    if (epoch == nullptr || *epoch == '\0')
        return std::string();
    char* end = nullptr;
    const long long seconds = std::strtoll(epoch, &end, 10);
    if (*end != '\0' || seconds < 0)
        return fail(ExitCode::usage, "SOURCE_DATE_EPOCH='{}' is not a number of seconds", epoch);
    const auto t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    return std::string(date);
}

Result<void> write_pages(const CommandChain& chain, const DocOptions& o) {
    SVM_CHECK(
        write_text(o.man_dir + "/" + man_page_name(chain) + ".1", man_page(chain, o.context)));
    for (const CLI::App* sub : subcommands_of(*chain.back())) {
        CommandChain child = chain;
        child.push_back(sub);
        SVM_CHECK(write_pages(child, o));
    }
    return {};
}

Result<void> generate(const DocOptions& o) {
    const std::unique_ptr<CliDefinition> cli = define_cli(o.context.version);
    SVM_CHECK(check_examples(cli->app, o.context.helper_dir));
    SVM_TRY(completion, bash_completion(cli->app));
    SVM_CHECK(write_pages({&cli->app}, o));
    return write_text(o.completion, completion);
}

Result<void> run(DocOptions& o) {
    SVM_TRY(date, page_date());
    o.context.date = date;
    return generate(o);
}

} // namespace

int main(int argc, char** argv) {
    DocOptions o;
    CLI::App app{"svmkit-doc: write svmkit's man pages and bash completion"};
    app.add_option("--version", o.context.version, "svmkit's version")->required();
    app.add_option("--doc-dir", o.context.doc_dir, "Where the docs are installed")->required();
    app.add_option("--helper-dir", o.context.helper_dir, "Where the helpers are installed")
        ->required();
    app.add_option("--man-dir", o.man_dir, "Existing directory for the pages")->required();
    app.add_option("--completion", o.completion, "The completion script to write")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "svmkit-doc: usage error: %s\n", e.what());
        return static_cast<int>(ExitCode::usage);
    }
    if (auto done = run(o); !done) {
        std::fprintf(stderr, "svmkit-doc: error: %s\n", done.error().message.c_str());
        return static_cast<int>(done.error().code);
    }
    return 0;
}
