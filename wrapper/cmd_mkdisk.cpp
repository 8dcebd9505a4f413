// svmkit mkdisk: a boot disk for the grub-style loader (docs/loader.md): a
// GPT whose "svmkit boot" partition holds a newc cpio with boot.cfg and the
// secure images, and an "svmkit data" partition in the rest. Every image is
// checked twice before it goes on the disk: as a secure image (format's strict
// reader) and by the guest loader's own ELF validation against its platform's
// memory layout, so a disk never carries an image the loader would refuse.
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "base/file.hpp"
#include "format/image_reader.hpp"
#include "loader/boot_cfg.h"
#include "platform/machine.hpp"
#include "wrapper/boot_disk_writer.hpp"
#include "wrapper/load_constraints.hpp"

#include <cctype>
#include <cstdio>
#include <memory>
#include <set>

namespace svmkit::cli {

namespace {

struct Entry {
    std::string name;
    std::string image;
    std::string cmdline;
};

// NAME: what boot.cfg quotes and the archive names the image after.
bool valid_entry_name(const std::string& name) {
    if (name.empty() || name.size() > loader::kMaxEntryName)
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
            c != '+')
            return false;
    return name != "." && name != "..";
}

// NAME=IMG[,cmdline=...]; the command line runs to the end (it may hold commas).
Result<Entry> parse_entry(const std::string& spec) {
    const std::size_t eq = spec.find('=');
    if (eq == std::string::npos)
        return fail(ExitCode::usage, "--entry '{}': expected NAME=IMG[,cmdline=...]", spec);
    Entry e;
    e.name = spec.substr(0, eq);
    std::string rest = spec.substr(eq + 1);
    const std::size_t cl = rest.find(",cmdline=");
    if (cl != std::string::npos) {
        e.cmdline = rest.substr(cl + 9);
        rest.resize(cl);
    }
    e.image = rest;
    if (!valid_entry_name(e.name))
        return fail(ExitCode::usage,
                    "--entry '{}': NAME must be 1 to {} characters of A-Z a-z 0-9 . _ - +", spec,
                    loader::kMaxEntryName);
    if (e.image.empty())
        return fail(ExitCode::usage, "--entry '{}': no image", spec);
    if (e.cmdline.size() > loader::kMaxCmdline)
        return fail(ExitCode::usage, "--entry '{}': command line longer than {} bytes", spec,
                    loader::kMaxCmdline);
    for (char c : e.cmdline)
        if (c == '\n' || c == '\r' || c == '\0')
            return fail(ExitCode::usage, "--entry '{}': line break in the command line", spec);
    return e;
}

// The image as the guest loader will see it: a valid secure image whose ELF
// the loader plans without complaint, with the constraints it applies when
// it reads the image from this disk on the machine's default memory
// (wrapper/load_constraints.hpp). Only headers are read.
Result<void> check_image(const Entry& e) {
    auto image = format::open_image(e.image);
    if (!image)
        return fail(image.error().code == ExitCode::io ? ExitCode::io : ExitCode::malformed,
                    "--entry {}: not a secure image: {}", e.name, image.error().message);
    const InputFile& in = *image->file;
    SVM_TRY(bc, image_load_constraints(image->arch, platform::kDefaultMemorySize, LoadPath::disk,
                                       e.image, in.size()));
    ElfFileSource file(in);
    loader::LoadPlan plan{};
    loader::ElfErrorDetail detail{};
    const loader::ElfError err = loader::plan_elf_load(file.source(), bc.c, &plan, &detail);
    if (file.error())
        return svmkit::unexpected(*file.error());
    if (err != loader::ElfError::none)
        return fail(ExitCode::malformed, "--entry {}: {}: the loader would refuse it: {}", e.name,
                    e.image, refusal_line(loader::describe_refusal(err, detail, bc)));
    return {};
}

std::string image_path(const Entry& e) {
    return "images/" + e.name + ".img";
}

std::string boot_cfg(const std::vector<Entry>& entries, const std::string& default_name) {
    std::string out = "# svmkit boot menu, written by svmkit mkdisk (docs/loader.md)\n";
    out += "set default=\"" + default_name + "\"\n";
    for (const Entry& e : entries) {
        out += "\nmenuentry \"" + e.name + "\" {\n";
        out += "    linux /" + image_path(e) + (e.cmdline.empty() ? "" : " " + e.cmdline) + "\n";
        out += "}\n";
    }
    return out;
}

std::string mib(std::uint64_t bytes) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

} // namespace

Result<int> run_mkdisk(const MkdiskOptions& o) {
    if (o.entries.empty())
        return fail(ExitCode::usage, "mkdisk: at least one --entry");
    if (o.entries.size() > loader::kMaxEntries)
        return fail(ExitCode::usage, "mkdisk: at most {} entries", loader::kMaxEntries);
    std::vector<Entry> entries;
    std::set<std::string> names;
    for (const std::string& spec : o.entries) {
        SVM_TRY(e, parse_entry(spec));
        if (!names.insert(e.name).second)
            return fail(ExitCode::usage, "--entry: '{}' named twice", e.name);
        entries.push_back(std::move(e));
    }
    const std::string default_name = o.default_entry.value_or(entries.front().name);
    if (names.count(default_name) == 0)
        return fail(ExitCode::usage, "--default '{}': no such --entry", default_name);
    std::uint64_t size = 0;
    if (o.size) {
        SVM_TRY(s, parse_size(*o.size, "--size"));
        size = s;
    }
    for (const Entry& e : entries)
        SVM_CHECK(check_image(e));

    // The menu the guest will parse, parsed here first with the same code.
    const std::string cfg = boot_cfg(entries, default_name);
    auto menu = std::make_unique<loader::BootMenu>();
    loader::BootCfgError cfg_error{};
    if (!loader::parse_boot_cfg(cfg.data(), cfg.size(), menu.get(), &cfg_error))
        return fail(ExitCode::usage, "mkdisk: the boot menu would not parse: line {}: {}",
                    cfg_error.line, cfg_error.message);

    BootDiskSpec spec;
    spec.disk_size = size;
    const auto cfg_bytes = as_bytes(cfg);
    spec.files.push_back(
        BootDiskFile{"boot.cfg", "", std::vector<std::byte>(cfg_bytes.begin(), cfg_bytes.end())});
    for (const Entry& e : entries)
        spec.files.push_back(BootDiskFile{image_path(e), e.image, std::nullopt});
    SVM_TRY(layout, write_boot_disk(spec, o.output));

    if (o.json) {
        Json j;
        j["schema"] = "svmkit-mkdisk-v1";
        j["output"] = o.output;
        j["size"] = layout.disk_size;
        j["default"] = default_name;
        j["entries"] = Json::array();
        for (const Entry& e : entries)
            j["entries"].push_back({{"name", e.name}, {"image", e.image}, {"file", image_path(e)}});
        j["boot_partition"] = {{"offset", layout.boot_offset}, {"size", layout.boot_size}};
        j["data_partition"] = layout.data_size == 0 ? Json(nullptr)
                                                    : Json{{"offset", layout.data_offset},
                                                           {"size", layout.data_size}};
        print_json(j, human_stream());
        return 0;
    }
    std::FILE* out = human_stream();
    std::fprintf(out, "wrote %s: %llu bytes, %zu entries (default \"%s\")\n", o.output.c_str(),
                 static_cast<unsigned long long>(layout.disk_size), entries.size(),
                 default_name.c_str());
    std::fprintf(out, "  partition 1 \"svmkit boot\": %s at byte %llu (cpio: boot.cfg",
                 mib(layout.boot_size).c_str(),
                 static_cast<unsigned long long>(layout.boot_offset));
    for (const Entry& e : entries)
        std::fprintf(out, ", %s", image_path(e).c_str());
    std::fprintf(out, ")\n");
    if (layout.data_size != 0)
        std::fprintf(out, "  partition 2 \"svmkit data\": %s at byte %llu\n",
                     mib(layout.data_size).c_str(),
                     static_cast<unsigned long long>(layout.data_offset));
    else
        std::fprintf(out, "  no data partition (less than 1 MiB left)\n");
    return 0;
}

Command add_mkdisk_command(CLI::App& app) {
    auto o = std::make_shared<MkdiskOptions>();
    auto* md =
        app.add_subcommand("mkdisk", "Write a GPT boot disk with boot.cfg and secure images");
    md->add_option("-o,--output", o->output, "Output disk image (a block device is written to)")
        ->required();
    md->add_option("--entry", o->entries, "Menu entry NAME=IMG[,cmdline=...]; repeatable")
        ->required();
    md->add_option("--default", o->default_entry, "The default entry (default: the first)");
    md->add_option("--size", o->size, "Whole disk size (e.g. 128M; default: boot + 64 MiB)");
    add_json_flag(md, o->json, "The disk's layout");
    return {md, [o] { return run_mkdisk(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
