// svmkit extract: one component's exact bytes.
#include "base/output_file.hpp"
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "format/image_reader.hpp"
#include "format/verify.hpp"

#include <cstdio>

namespace svmkit::cli {

namespace {

int extract_written(const ExtractOptions& o, std::uint64_t bytes) {
    if (o.json) {
        Json j;
        j["schema"] = "svmkit-extract-v1";
        j["image"] = o.image;
        j["component"] = o.component;
        j["output"] = o.output;
        j["size"] = bytes;
        print_json(j, human_stream());
    } else {
        std::fprintf(human_stream(), "wrote %s: %s, %llu bytes\n", o.output.c_str(),
                     o.component == "manifest" ? "manifest device tree" : o.component.c_str(),
                     static_cast<unsigned long long>(bytes));
    }
    return 0;
}

} // namespace

Result<int> run_extract(const ExtractOptions& o) {
    SVM_TRY(img, format::open_image(o.image));
    if (o.component == "manifest") {
        SVM_CHECK(write_output_file(o.output, img.manifest_blob));
        return extract_written(o, img.manifest_blob.size());
    }
    auto kind = format::parse_component_name(o.component);
    if (!kind || *kind == format::ComponentKind::stub_text ||
        *kind == format::ComponentKind::stub_rodata)
        return fail(ExitCode::usage,
                    "--component: '{}' is not one of kernel, initrd, cmdline, dtb, manifest",
                    o.component);
    const format::Component* c = img.manifest.find(*kind);
    if (c == nullptr)
        return fail(ExitCode::usage, "{}: the image has no {}", o.image, o.component);

    SVM_TRY(out, OutputFile::create(o.output));
    std::uint64_t written = 0;
    auto sink = [&](std::span<const std::byte> chunk) -> Result<void> {
        SVM_CHECK(out.write_at(written, chunk));
        written += chunk.size();
        return {};
    };
    const format::PayloadSource src = format::component_source(img, *kind);
    if (c->compression == format::Compression::gzip) {
        SVM_TRY(n, format::gunzip_stream(src, *c->unpacked_size, sink));
        if (n != *c->unpacked_size)
            return fail(ExitCode::malformed, "{}: kernel unpacks to {} bytes, the manifest says {}",
                        o.image, n, *c->unpacked_size);
    } else {
        SVM_CHECK(format::stream_payload(src, sink));
    }
    SVM_CHECK(out.commit());
    return extract_written(o, written);
}

Command add_extract_command(CLI::App& app) {
    auto o = std::make_shared<ExtractOptions>();
    auto* x = app.add_subcommand("extract", "Write one component's exact bytes to a file");
    x->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    x->add_option("--component", o->component, "kernel, initrd, cmdline, dtb or manifest")
        ->required();
    x->add_option("-o,--output", o->output, "Output file ('-': stdout)")->required();
    add_json_flag(x, o->json, "What was written");
    return {x, [o] { return run_extract(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
