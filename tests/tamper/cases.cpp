#include "tamper/cases.hpp"

#include "format/image_layout.hpp"
#include "format/manifest.hpp"
#include "signer/signer.hpp"

#include <algorithm>
#include <random>
#include <set>

namespace svmkit::tamper {

namespace {

constexpr std::uint8_t kHeaderMasks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
constexpr std::uint8_t kContentMasks[] = {0xff, 0x01, 0x80};

std::optional<format::ComponentKind> component_of(std::string_view section) {
    for (format::ComponentKind k : format::kAllComponentKinds)
        if (format::component_section(k) == section)
            return k;
    return std::nullopt;
}

// The names a rejection of a changed component must mention: the verify
// report's "<name>: digest mismatch" and the ultravisor's cause.
void expect_component(Case& c, format::ComponentKind k) {
    const std::string name(format::component_name(k));
    c.verify_names = {name + ": digest mismatch", name + ": unpacked digest mismatch"};
    // The stub runs before the ultravisor has checked anything (as on PEF):
    // tampered stub code or data does whatever it now does (faults, stops,
    // asks for ESM with a wrong blob or kbase); the ultravisor refuses or
    // the VM never becomes secure. Any refusal will do there.
    if (k != format::ComponentKind::stub_text && k != format::ComponentKind::stub_rodata)
        c.boot_names = {name + "-digest-mismatch"};
}

// Offsets to flip in a region of `size` bytes: all of them up to `quota`,
// else the first and last 128 and a uniform random sample of the rest.
std::vector<std::uint64_t> sample(std::uint64_t size, std::size_t quota, std::mt19937_64& rng) {
    std::vector<std::uint64_t> out;
    if (size <= quota) {
        for (std::uint64_t i = 0; i < size; ++i)
            out.push_back(i);
        return out;
    }
    std::set<std::uint64_t> picked;
    for (std::uint64_t i = 0; i < 128; ++i) {
        picked.insert(i);
        picked.insert(size - 1 - i);
    }
    std::uniform_int_distribution<std::uint64_t> any(0, size - 1);
    while (picked.size() < quota)
        picked.insert(any(rng));
    return {picked.begin(), picked.end()};
}

Case flip(const Region& r, std::uint64_t offset, std::uint8_t mask, std::string row) {
    Case c;
    c.kind = Case::Kind::flip;
    c.row = std::move(row);
    c.offset = offset;
    c.mask = mask;
    c.what = fmt::format("flip {:#04x} at {:#x} ({} +{})", mask, offset, r.name, offset - r.offset);
    return c;
}

// File padding belongs to no header and no section, and nothing reads it;
// still the reader requires it to be zero (the container's one byte form,
// format/canonical_container.hpp), so no byte of the file is free.
void expect_padding(Case& c) {
    c.verify_names = {"non-zero padding", "bytes after the section headers"};
}

std::vector<std::byte> hash_of(const format::Manifest& m, std::span<const std::byte> bytes) {
    return signer::digest(m.hash, bytes);
}

// Which components of `composed` do not match the manifest it carries: the
// names a rejection must mention.
std::vector<std::string> mismatched_components(const ComposedImage& composed,
                                               const format::Manifest& manifest) {
    std::vector<std::string> names;
    for (const LoadedSection& s : composed.sections) {
        auto kind = component_of(s.name);
        if (!kind)
            continue;
        const format::Component* c = manifest.find(*kind);
        if (c == nullptr || c->size != s.bytes.size() || c->address != s.address ||
            c->digest != hash_of(manifest, s.bytes)) {
            names.push_back(std::string(format::component_name(*kind)));
            names.push_back("'" + s.name + "'");
        }
    }
    return names;
}

// Fills in what a whole-file case must do: be what an identical signed image
// is, or be rejected naming a component that does not match its manifest.
void expect_whole_file(Case& c, const ComposedImage& composed, const format::Manifest& manifest,
                       const std::vector<const SignedImage*>& all) {
    for (const SignedImage* s : all)
        if (s->bytes == *c.file) {
            c.covered = false;
            c.same_as = s;
            return;
        }
    c.verify_names = mismatched_components(composed, manifest);
    c.boot_names = c.verify_names;
    for (const std::string& n : std::vector<std::string>(c.verify_names))
        if (n.front() != '\'')
            c.boot_names.push_back((n.starts_with("stub") ? std::string("stub") : n) +
                                   "-digest-mismatch");
}

} // namespace

std::vector<Case> header_flips(const ImageMap& map) {
    std::vector<Case> out;
    for (const Region& r : map.regions()) {
        if (r.kind != RegionKind::elf_header && r.kind != RegionKind::program_header &&
            r.kind != RegionKind::section_header && r.kind != RegionKind::section_names)
            continue;
        for (std::uint64_t at = r.offset; at < r.end(); ++at)
            for (std::uint8_t mask : kHeaderMasks) {
                Case c = flip(r, at, mask, std::string(region_kind_name(r.kind)));
                // Headers are not signed: the strict reader must refuse the file
                // (docs/format.md), before any digest is computed.
                c.reader_must_refuse = true;
                out.push_back(std::move(c));
            }
    }
    return out;
}

std::vector<Case> content_flips(const ImageMap& map, const CasePlan& plan) {
    std::vector<Case> out;
    std::vector<const Region*> padding;
    std::uint64_t padding_bytes = 0;
    for (const Region& r : map.regions()) {
        std::mt19937_64 rng(plan.seed ^ std::hash<std::string>{}(r.name));
        if (r.kind == RegionKind::file_padding) {
            padding.push_back(&r);
            padding_bytes += r.size;
            continue;
        }
        if (r.kind == RegionKind::section) {
            const bool tree = r.section == format::kManifestSection;
            const auto kind = component_of(r.section);
            // Small regions and the manifest's tree: every byte, three ways.
            const bool every = tree || r.size <= 512;
            const std::string row = tree ? r.section + " (device tree)" : r.section;
            std::size_t n = 0;
            for (std::uint64_t off : sample(r.size, every ? r.size : plan.content_quota, rng)) {
                for (std::uint8_t mask : kContentMasks) {
                    if (!every && mask != kContentMasks[n % 3])
                        continue;
                    Case c = flip(r, r.offset + off, mask, row);
                    if (kind) {
                        expect_component(c, *kind);
                    } else {
                        c.verify_names = {"manifest", "signature"};
                        c.boot_names = {"manifest", "blob-malformed", "signature", "before ESM"};
                    }
                    c.uv_direct = true;
                    out.push_back(std::move(c));
                }
                ++n;
            }
        }
        if (r.kind == RegionKind::manifest_padding) {
            for (std::uint64_t off : sample(r.size, plan.content_quota / 4, rng)) {
                Case c = flip(r, r.offset + off, 0xff, r.section + " (zero padding)");
                c.verify_names = {"non-zero bytes after the device tree"};
                // The stub hands the ultravisor the tree only (fdt_totalsize):
                // in guest memory this padding is unverified RAM like any other.
                c.uv_direct = true;
                c.uv_covered = false;
                out.push_back(std::move(c));
            }
        }
    }
    // File padding: sampled over all of it, in proportion to each gap.
    std::mt19937_64 rng(plan.seed);
    std::uniform_int_distribution<std::uint64_t> any(0, padding_bytes - 1);
    std::set<std::uint64_t> picked;
    for (const Region* r : padding) // both ends of every gap
        picked.insert({r->offset, r->end() - 1});
    while (picked.size() < std::min<std::uint64_t>(plan.padding_samples, padding_bytes)) {
        std::uint64_t k = any(rng);
        for (const Region* r : padding) {
            if (k < r->size) {
                picked.insert(r->offset + k);
                break;
            }
            k -= r->size;
        }
    }
    for (std::uint64_t at : picked) {
        Case c = flip(map.at(at), at, 0xff, "file padding");
        expect_padding(c);
        out.push_back(std::move(c));
    }
    return out;
}

std::vector<Case> truncations(const SignedImage& a, const ImageMap& map) {
    std::vector<Case> out;
    std::set<std::uint64_t> sizes;
    for (const Region& r : map.regions())
        for (std::uint64_t b : {r.offset, r.end()})
            for (std::uint64_t s : {b - 1, b, b + 1})
                if (b > 0 && s < map.file_size())
                    sizes.insert(s);
    sizes.insert(0);
    for (std::uint64_t s : sizes) {
        Case c;
        c.kind = Case::Kind::truncate;
        c.row = "truncation";
        c.size = s;
        c.what = fmt::format("truncate to {} bytes ({} removed; cut in {})", s, map.file_size() - s,
                             s < map.file_size() ? map.at(s).name : "");
        c.verify_names = {"truncated"};
        c.boot_names = {"truncated"};
        out.push_back(std::move(c));
    }
    // Bytes appended after the section headers.
    const std::vector<std::pair<std::string, std::vector<std::byte>>> tails = {
        {"1 zero byte", std::vector<std::byte>(1)},
        {"1 byte 0xff", std::vector<std::byte>(1, std::byte{0xff})},
        {"8 zero bytes", std::vector<std::byte>(8)},
        {"64 KiB of zeros", std::vector<std::byte>(64 << 10)},
        {"a copy of the manifest section",
         {a.bytes.begin() + static_cast<std::ptrdiff_t>(a.image.manifest_section.offset),
          a.bytes.begin() + static_cast<std::ptrdiff_t>(a.image.manifest_section.offset +
                                                        a.image.manifest_section.size)}},
    };
    for (const auto& [what, tail] : tails) {
        auto file = std::make_shared<std::vector<std::byte>>(a.bytes);
        file->insert(file->end(), tail.begin(), tail.end());
        Case c;
        c.kind = Case::Kind::whole_file;
        c.row = "appended bytes";
        c.what = "append " + what;
        c.file = std::move(file);
        expect_padding(c);
        out.push_back(std::move(c));
    }
    return out;
}

std::vector<Case> swaps(const SignedImage& a, const SignedImage& b,
                        const std::vector<const SignedImage*>& all) {
    std::vector<Case> out;
    const ComposedImage from_a = decompose(a.image, a.bytes);
    const ComposedImage from_b = decompose(b.image, b.bytes);
    std::vector<std::string> payloads; // the sections after the manifest
    bool after = false;
    for (const LoadedSection& s : from_a.sections) {
        if (after)
            payloads.push_back(s.name);
        after = after || s.name == format::kManifestSection;
    }
    for (const SignedImage* owner : {&a, &b}) {
        const ComposedImage& base = owner == &a ? from_a : from_b;
        const ComposedImage& donor = owner == &a ? from_b : from_a;
        for (unsigned set = 1; set < (1u << payloads.size()); ++set) {
            ComposedImage mixed = base;
            std::string taken;
            for (std::size_t i = 0; i < payloads.size(); ++i)
                if (set & (1u << i)) {
                    for (const LoadedSection& s : donor.sections)
                        if (s.name == payloads[i])
                            replace_section(mixed, s.name, s);
                    taken += (taken.empty() ? "" : " ") + payloads[i];
                }
            relayout(mixed);
            Case c;
            c.kind = Case::Kind::whole_file;
            c.row = "section swap (mix and match)";
            c.what = fmt::format("{}'s manifest and stub with {} from {}", owner->label, taken,
                                 owner == &a ? b.label : a.label);
            c.file = std::make_shared<const std::vector<std::byte>>(compose(mixed));
            expect_whole_file(c, mixed, owner->image.manifest, all);
            out.push_back(std::move(c));
        }
    }
    return out;
}

std::vector<Case> transplants(const SignedImage& a, const std::vector<const SignedImage*>& donors,
                              const std::vector<const SignedImage*>& all) {
    std::vector<Case> out;
    const ComposedImage from_a = decompose(a.image, a.bytes);
    for (const SignedImage* d : donors) {
        const ComposedImage from_d = decompose(d->image, d->bytes);
        const LoadedSection* d_manifest = nullptr;
        const LoadedSection* a_manifest = nullptr;
        for (const LoadedSection& s : from_d.sections)
            if (s.name == format::kManifestSection)
                d_manifest = &s;
        for (const LoadedSection& s : from_a.sections)
            if (s.name == format::kManifestSection)
                a_manifest = &s;
        // d's manifest over a's sections, and a's manifest over d's.
        for (int way = 0; way < 2; ++way) {
            ComposedImage mixed = way == 0 ? from_a : from_d;
            replace_section(mixed, format::kManifestSection, way == 0 ? *d_manifest : *a_manifest);
            relayout(mixed);
            Case c;
            c.kind = Case::Kind::whole_file;
            c.row = "manifest transplant";
            c.what = way == 0
                         ? fmt::format("{}'s manifest into {} ({})", d->label, a.label, d->what)
                         : fmt::format("{}'s manifest into {} ({})", a.label, d->label, d->what);
            c.file = std::make_shared<const std::vector<std::byte>>(compose(mixed));
            expect_whole_file(c, mixed, way == 0 ? d->image.manifest : a.image.manifest, all);
            out.push_back(std::move(c));
        }
    }
    return out;
}

} // namespace svmkit::tamper
