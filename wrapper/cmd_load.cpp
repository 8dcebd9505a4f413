// svmkit load --plan: the segment plan a kexec-style load of an image would
// use, computed by the guest loader's own code (loader/elf_plan,
// loader/segment_digest) against the platform's memory layout, without
// booting anything. A dry run users can inspect in CI (docs/loader.md).
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/hex_text.hpp"
#include "wrapper/json.hpp"

#include "base/file.hpp"
#include "format/arch.hpp"
#include "loader/segment_digest.h"
#include "platform/machine.hpp"
#include "wrapper/json.hpp"
#include "wrapper/load_constraints.hpp"
#include "wrapper/memory_map.hpp"

#include <array>
#include <cstdio>
#include <vector>

namespace svmkit::cli {

namespace {

// The digests are computed a chunk at a time: the command never holds more
// of the image than this (docs/loader.md: under 64 MiB at any image size).
constexpr std::uint32_t kDigestChunk = 1u << 20;

std::string flags(const loader::PlannedSegment& s) {
    return std::string("r") + (s.writable ? "w" : "-") + (s.executable ? "x" : "-");
}

// The platform from the image's e_machine when --arch is not given; an image
// too short to say gets the host's (and the loader's verdict on it).
Result<format::Arch> plan_arch(const LoadOptions& o, const InputFile& file) {
    if (!o.arch.empty())
        return format::parse_arch(o.arch);
    std::array<std::uint8_t, 2> machine{};
    if (file.size() >= 20)
        SVM_CHECK(file.read_at(18, std::as_writable_bytes(std::span(machine))));
    if ((machine[0] | (machine[1] << 8)) == format::arch_elf_machine(format::Arch::ppc64le))
        return format::Arch::ppc64le;
    return format::Arch::x86_64;
}

struct PlanResult {
    format::Arch arch = format::Arch::x86_64;
    std::uint64_t file_size = 0;
    loader::BootConstraints constraints{};
    loader::ElfError error = loader::ElfError::none;
    loader::LoadRefusal refusal{};
    loader::LoadPlan plan{};
    loader::SegmentDigests digests{};
};

// The plan as a memory map: what the loader keeps clear, and the segments
// (or, refused, the segment it refused).
std::vector<MapRow> plan_map(const PlanResult& p) {
    const loader::LoadConstraints& c = p.constraints.c;
    std::vector<MapEntry> entries;
    for (std::uint32_t i = 0; i < c.reserved_count; ++i)
        entries.push_back({loader::range_kind_name(p.constraints.kinds[i]), "reserved",
                           c.reserved[i].start, c.reserved[i].end});
    for (std::uint32_t i = 0; i < p.plan.count && p.error == loader::ElfError::none; ++i) {
        const loader::PlannedSegment& s = p.plan.segments[i];
        entries.push_back({fmt::format("segment {} ({})", i, flags(s)), "segment", s.address,
                           s.address + s.mem_size});
    }
    if (p.error != loader::ElfError::none && p.refusal.segment != loader::kNoIndex)
        entries.push_back({fmt::format("segment {} (refused)", p.refusal.segment), "segment",
                           p.refusal.segment_start, p.refusal.segment_end});
    return memory_map(std::move(entries), c.ram_start, c.ram_end);
}

void print_text(const LoadOptions& o, const PlanResult& p) {
    const loader::LoadConstraints& c = p.constraints.c;
    std::printf("%s: %s image, %llu bytes, %u segments, entry %s\n", o.image.c_str(),
                std::string(format::arch_name(p.arch)).c_str(),
                static_cast<unsigned long long>(p.file_size), p.plan.count,
                hex_address(p.plan.entry).c_str());
    std::printf("memory: RAM [%s, %s)", hex_address(c.ram_start).c_str(),
                hex_address(c.ram_end).c_str());
    for (std::uint32_t i = 0; i < c.reserved_count; ++i)
        std::printf(", %s [%s, %s)", loader::range_kind_name(p.constraints.kinds[i]),
                    hex_address(c.reserved[i].start).c_str(),
                    hex_address(c.reserved[i].end).c_str());
    std::printf(" reserved\n");
    std::printf("%-3s %-12s %-10s %-12s %-10s %-5s %s\n", "#", "file offset", "file size",
                "address", "mem size", "flags", "sha256");
    for (std::uint32_t i = 0; i < p.plan.count; ++i) {
        const loader::PlannedSegment& s = p.plan.segments[i];
        std::printf("%-3u %-12s %-10llu %-12s %-10llu %-5s %s\n", i,
                    hex_address(s.file_offset).c_str(),
                    static_cast<unsigned long long>(s.file_size), hex_address(s.address).c_str(),
                    static_cast<unsigned long long>(s.mem_size), flags(s).c_str(),
                    hex_bytes(p.digests.sha256[i], loader::kSegmentDigestSize).c_str());
    }
    std::printf("memory map:\n%s", memory_map_text(plan_map(p)).c_str());
}

void print_plan_json(const LoadOptions& o, const PlanResult& p) {
    const loader::LoadConstraints& c = p.constraints.c;
    JsonWriter j;
    j.begin_object();
    j.value("schema", "svmkit-load-plan-v1");
    j.value("file", o.image);
    j.value("file_size", p.file_size);
    j.value("arch", format::arch_name(p.arch));
    j.value("machine", std::uint64_t{c.machine});
    j.begin_object("memory");
    j.value("ram_start", hex_address(c.ram_start));
    j.value("ram_end", hex_address(c.ram_end));
    j.value("max_segment_size", c.max_segment_size);
    j.begin_array("reserved");
    for (std::uint32_t i = 0; i < c.reserved_count; ++i) {
        j.begin_object();
        j.value("name", loader::range_kind_name(p.constraints.kinds[i]));
        j.value("kind", loader::range_kind_id(p.constraints.kinds[i]));
        j.value("start", hex_address(c.reserved[i].start));
        j.value("end", hex_address(c.reserved[i].end));
        j.end_object();
    }
    j.end_array();
    j.end_object();
    j.value("accepted", p.error == loader::ElfError::none);
    if (p.error != loader::ElfError::none) {
        j.value("error", loader::elf_error_name(p.error));
        j.value("message", loader::elf_error_message(p.error));
        j.json("refusal", refusal_json(p.refusal));
    } else {
        j.value("entry", hex_address(p.plan.entry));
        j.begin_array("segments");
        for (std::uint32_t i = 0; i < p.plan.count; ++i) {
            const loader::PlannedSegment& s = p.plan.segments[i];
            j.begin_object();
            j.value("index", std::uint64_t{i});
            j.value("file_offset", s.file_offset);
            j.value("file_size", s.file_size);
            j.value("address", hex_address(s.address));
            j.value("mem_size", s.mem_size);
            j.value("flags", flags(s));
            j.value("sha256", hex_bytes(p.digests.sha256[i], loader::kSegmentDigestSize));
            j.end_object();
        }
        j.end_array();
    }
    j.json("memory_map", memory_map_json(plan_map(p)));
    j.end_object();
    print_json(j.document(), stdout);
}

// The plan and, when the loader accepts the image, the digests it would
// record, from the file a piece at a time.
// plan_elf_load() against `bc` into p; accepted, the digests the loader
// would record, streamed a chunk at a time.
void plan_with(ElfFileSource& file, const loader::BootConstraints& bc, PlanResult& p) {
    p.constraints = bc;
    loader::ElfErrorDetail detail{};
    p.error = loader::plan_elf_load(file.source(), bc.c, &p.plan, &detail);
    if (p.error != loader::ElfError::none) {
        p.refusal = loader::describe_refusal(p.error, detail, bc);
        return;
    }
    std::vector<std::uint8_t> chunk(kDigestChunk);
    for (std::uint32_t i = 0; i < p.plan.count; ++i)
        loader::digest_segment(file.source(), p.plan.segments[i], chunk.data(), kDigestChunk,
                               p.digests.sha256[i]);
    p.digests.count = p.plan.count;
}

Result<PlanResult> make_plan(const LoadOptions& o, std::uint64_t memory) {
    SVM_TRY(in, InputFile::open(o.image));
    PlanResult p;
    p.file_size = in.size();
    SVM_TRY(arch, plan_arch(o, in));
    p.arch = arch;
    ElfFileSource file(in);
    auto kexec = image_load_constraints(arch, memory, LoadPath::kexec, o.image, in.size());
    if (kexec) {
        plan_with(file, *kexec, p);
    } else {
        // The firmware could not even hand the file over (larger than the RAM
        // above the loader). Still say first what the loader would think of
        // it: a file that is not an ELF is that before it is too large.
        SVM_TRY(disk, image_load_constraints(arch, memory, LoadPath::disk, o.image, in.size()));
        plan_with(file, disk, p);
        if (p.error == loader::ElfError::none && !file.error())
            return svmkit::unexpected(kexec.error());
    }
    if (file.error())
        return svmkit::unexpected(*file.error());
    return p;
}

} // namespace

Result<int> run_load(const LoadOptions& o) {
    if (!o.plan)
        return fail(ExitCode::usage, "load: only --plan is supported (the dry run)");
    SVM_TRY(memory, parse_size(o.memory, "--memory"));
    if (memory == 0 || memory % platform::kGuestPageSize != 0)
        return fail(ExitCode::usage, "--memory: must be a non-zero multiple of 64 KiB");
    SVM_TRY(p, make_plan(o, memory));
    if (o.json)
        print_plan_json(o, p);
    if (p.error != loader::ElfError::none) {
        // The loader's verdict, in the words its console would show.
        if (!o.json)
            std::printf("memory map:\n%s", memory_map_text(plan_map(p)).c_str());
        std::fprintf(stderr, "svmkit: error: %s: rejected by the loader: %s\n", o.image.c_str(),
                     refusal_line(p.refusal).c_str());
        return static_cast<int>(ExitCode::malformed);
    }
    if (!o.json)
        print_text(o, p);
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
