#include "wrapper/cli_definition.hpp"

namespace svmkit::cli {

std::unique_ptr<CliDefinition> define_cli(const std::string& version) {
    auto cli = std::make_unique<CliDefinition>();
    CLI::App& app = cli->app;
    app.set_version_flag("--version", "svmkit " + version);
    app.require_subcommand(1);
    app.footer("\nRun 'svmkit help COMMAND' for a command's options. '-' names standard input or\n"
               "output where one non-secret file is read or written (docs/cli.md).\n\n" +
               exit_code_table());
    cli->help = app.add_subcommand("help", "Show help for svmkit or one of its commands");
    cli->help->add_option("command", cli->help_path, "The command (and subcommand) to describe");
    cli->commands = {add_build_command(app),  add_keygen_command(app),  add_inspect_command(app),
                     add_verify_command(app), add_extract_command(app), add_tbs_command(app),
                     add_attach_command(app), add_boot_command(app),    add_esm_command(app),
                     add_mkdisk_command(app), add_load_command(app)};
    return cli;
}

std::vector<const CLI::App*> subcommands_of(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App*) { return true; });
}

bool is_group(const CLI::App& app) {
    return !subcommands_of(app).empty();
}

std::vector<const CLI::Option*> listed_options(const CLI::App& app) {
    return app.get_options(
        [](const CLI::Option* o) { return !o->get_group().empty() && o->nonpositional(); });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return !o->nonpositional(); });
}

bool takes_value(const CLI::Option& option) {
    return option.get_type_size() != 0 && !option.get_type_name().empty();
}

bool repeatable(const CLI::Option& option) {
    return option.get_expected_max() >= CLI::detail::expected_max_vector_size;
}

} // namespace svmkit::cli
