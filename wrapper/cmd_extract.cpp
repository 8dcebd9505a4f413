// svmkit extract: one component's exact bytes.
#include "base/output_file.hpp"
#include "wrapper/commands.hpp"

#include "format/image_reader.hpp"
#include "format/verify.hpp"

#include <cstdio>

namespace svmkit::cli {

Result<int> run_extract(const ExtractOptions& o) {
    SVM_TRY(img, format::open_image(o.image));
    if (o.component == "manifest") {
        SVM_CHECK(write_output_file(o.output, img.manifest_blob));
        std::printf("wrote %s: manifest device tree, %zu bytes\n", o.output.c_str(),
                    img.manifest_blob.size());
        return 0;
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
    std::printf("wrote %s: %s, %llu bytes\n", o.output.c_str(), o.component.c_str(),
                static_cast<unsigned long long>(written));
    return 0;
}

} // namespace svmkit::cli
