// svmkit load --plan: the segment plan a kexec-style load of an image would
// use, computed by the guest loader's own code (loader/elf_plan,
// loader/segment_digest) against the platform's memory layout, without
// booting anything. A dry run users can inspect in CI (docs/loader.md).
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "base/file.hpp"
#include "format/arch.hpp"
#include "loader/segment_digest.h"
#include "platform/machine.hpp"
#include "wrapper/json.hpp"
#include "wrapper/load_constraints.hpp"

#include <cstdio>
#include <map>

namespace svmkit::cli {

namespace {

// Images are read whole, as the guest loader reads its kexec buffer.
constexpr std::uint64_t kMaxImageSize = 4ull << 30;

std::string hex_addr(std::uint64_t v) {
    return fmt::format("{:#x}", v);
}

std::string flags(const loader::PlannedSegment& s) {
    return std::string("r") + (s.writable ? "w" : "-") + (s.executable ? "x" : "-");
}

std::string hex(const std::uint8_t* p, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out += fmt::format("{:02x}", p[i]);
    return out;
}

// The platform from the image's e_machine when --arch is not given; an image
// too short to say gets the host's (and the loader's verdict on it).
Result<format::Arch> plan_arch(const LoadOptions& o, const std::vector<std::byte>& file) {
    if (!o.arch.empty())
        return format::parse_arch(o.arch);
    if (file.size() >= 20) {
        const auto machine = static_cast<std::uint16_t>(std::to_integer<unsigned>(file[18]) |
                                                        (std::to_integer<unsigned>(file[19]) << 8));
        if (machine == format::arch_elf_machine(format::Arch::ppc64le))
            return format::Arch::ppc64le;
    }
    return format::Arch::x86_64;
}

// Placed segments, each in a host buffer of its own (what the guest's RAM
// would hold at its address): the digests are the ones the guest loader would
// record for its purgatory.
struct PlacedBuffers {
    std::map<std::uint64_t, std::vector<std::uint8_t>> by_address;
    static std::uint8_t* to_pointer(void* ctx, std::uint64_t gpa, std::uint64_t size) {
        auto& m = static_cast<PlacedBuffers*>(ctx)->by_address;
        auto it = m.find(gpa);
        return it != m.end() && it->second.size() == size ? it->second.data() : nullptr;
    }
};

void print_text(const LoadOptions& o, format::Arch arch, std::uint64_t file_size,
                const PlatformLoadLayout& layout, const loader::LoadPlan& plan,
                const loader::SegmentDigests& d) {
    const loader::LoadConstraints& c = layout.constraints;
    std::printf("%s: %s image, %llu bytes, %u segments, entry %s\n", o.image.c_str(),
                std::string(format::arch_name(arch)).c_str(),
                static_cast<unsigned long long>(file_size), plan.count,
                hex_addr(plan.entry).c_str());
    std::printf("memory: RAM [%s, %s)", hex_addr(c.ram_start).c_str(), hex_addr(c.ram_end).c_str());
    for (std::uint32_t i = 0; i < c.reserved_count; ++i)
        std::printf(", %s [%s, %s)", layout.reserved_names[i].c_str(),
                    hex_addr(c.reserved[i].start).c_str(), hex_addr(c.reserved[i].end).c_str());
    std::printf(" reserved\n");
    std::printf("%-3s %-12s %-10s %-12s %-10s %-5s %s\n", "#", "file offset", "file size",
                "address", "mem size", "flags", "sha256");
    for (std::uint32_t i = 0; i < plan.count; ++i) {
        const loader::PlannedSegment& s = plan.segments[i];
        std::printf("%-3u %-12s %-10llu %-12s %-10llu %-5s %s\n", i,
                    hex_addr(s.file_offset).c_str(), static_cast<unsigned long long>(s.file_size),
                    hex_addr(s.address).c_str(), static_cast<unsigned long long>(s.mem_size),
                    flags(s).c_str(), hex(d.sha256[i], loader::kSegmentDigestSize).c_str());
    }
}

void print_plan_json(const LoadOptions& o, format::Arch arch, std::uint64_t file_size,
                     const PlatformLoadLayout& layout, loader::ElfError e,
                     const loader::LoadPlan& plan, const loader::SegmentDigests& d) {
    const loader::LoadConstraints& c = layout.constraints;
    JsonWriter j;
    j.begin_object();
    j.value("schema", "svmkit-load-plan-v1");
    j.value("file", o.image);
    j.value("file_size", file_size);
    j.value("arch", format::arch_name(arch));
    j.value("machine", std::uint64_t{c.machine});
    j.begin_object("memory");
    j.value("ram_start", hex_addr(c.ram_start));
    j.value("ram_end", hex_addr(c.ram_end));
    j.value("max_segment_size", c.max_segment_size);
    j.begin_array("reserved");
    for (std::uint32_t i = 0; i < c.reserved_count; ++i) {
        j.begin_object();
        j.value("name", layout.reserved_names[i]);
        j.value("start", hex_addr(c.reserved[i].start));
        j.value("end", hex_addr(c.reserved[i].end));
        j.end_object();
    }
    j.end_array();
    j.end_object();
    j.value("accepted", e == loader::ElfError::none);
    if (e != loader::ElfError::none) {
        j.value("error", loader::elf_error_name(e));
        j.value("message", loader::elf_error_message(e));
    } else {
        j.value("entry", hex_addr(plan.entry));
        j.begin_array("segments");
        for (std::uint32_t i = 0; i < plan.count; ++i) {
            const loader::PlannedSegment& s = plan.segments[i];
            j.begin_object();
            j.value("index", std::uint64_t{i});
            j.value("file_offset", s.file_offset);
            j.value("file_size", s.file_size);
            j.value("address", hex_addr(s.address));
            j.value("mem_size", s.mem_size);
            j.value("flags", flags(s));
            j.value("sha256", hex(d.sha256[i], loader::kSegmentDigestSize));
            j.end_object();
        }
        j.end_array();
    }
    j.end_object();
    print_json(j.document(), stdout);
}

} // namespace

Result<int> run_load(const LoadOptions& o) {
    if (!o.plan)
        return fail(ExitCode::usage, "load: only --plan is supported (the dry run)");
    SVM_TRY(memory, parse_size(o.memory, "--memory"));
    if (memory == 0 || memory % platform::kGuestPageSize != 0)
        return fail(ExitCode::usage, "--memory: must be a non-zero multiple of 64 KiB");
    SVM_TRY(in, InputFile::open(o.image));
    SVM_TRY(file, in.read_all(kMaxImageSize));
    SVM_TRY(arch, plan_arch(o, file));
    const PlatformLoadLayout layout = platform_load_layout(arch, memory);

    loader::LoadPlan plan{};
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(file.data());
    const loader::ElfError e = loader::plan_elf_load(bytes, file.size(), layout.constraints, &plan);
    loader::SegmentDigests digests{};
    if (e == loader::ElfError::none) {
        PlacedBuffers placed;
        for (std::uint32_t i = 0; i < plan.count; ++i)
            placed.by_address[plan.segments[i].address].resize(plan.segments[i].mem_size);
        if (!loader::place_segments(bytes, plan, PlacedBuffers::to_pointer, &placed, &digests))
            return fail(ExitCode::io, "{}: placing the planned segments failed", o.image);
    }
    if (o.json)
        print_plan_json(o, arch, file.size(), layout, e, plan, digests);
    if (e != loader::ElfError::none) {
        // The loader's verdict, with the message the guest console would show.
        std::fprintf(stderr, "svmkit: error: %s: rejected by the loader: %s (%s)\n",
                     o.image.c_str(), loader::elf_error_message(e), loader::elf_error_name(e));
        return static_cast<int>(ExitCode::malformed);
    }
    if (!o.json)
        print_text(o, arch, file.size(), layout, plan, digests);
    return 0;
}

Command add_load_command(CLI::App& app) {
    auto o = std::make_shared<LoadOptions>();
    auto* ld = app.add_subcommand("load", "Show the kexec-style segment plan of an image");
    ld->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    ld->add_flag("--plan", o->plan, "Dry run: print the plan, load nothing")->required();
    add_json_flag(ld, o->json, "The plan (svmkit-load-plan-v1)");
    ld->add_option("--arch", o->arch, "host, x86_64 or ppc64le (default: the image's)");
    ld->add_option("--memory", o->memory, "Guest RAM the plan must fit")->capture_default_str();
    return {ld, [o] { return run_load(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
