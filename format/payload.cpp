#include "format/payload.hpp"
#include "base/output_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

namespace svmkit::format {

PayloadSource PayloadSource::from_memory(std::string label, std::vector<std::byte> bytes) {
    PayloadSource s;
    s.label = std::move(label);
    s.size = bytes.size();
    s.memory = std::move(bytes);
    return s;
}

PayloadSource PayloadSource::from_file(std::shared_ptr<const InputFile> file) {
    PayloadSource s;
    s.label = file->path();
    s.size = file->size();
    s.extents.push_back(Extent{0, file->size(), 0});
    s.file = std::move(file);
    return s;
}

Result<void> stream_payload(const PayloadSource& source,
                            const std::function<Result<void>(std::span<const std::byte>)>& sink) {
    if (!source.file) {
        for (std::size_t off = 0; off < source.memory.size(); off += kStreamChunk) {
            auto n = std::min(kStreamChunk, source.memory.size() - off);
            SVM_CHECK(sink(std::span(source.memory).subspan(off, n)));
        }
        return {};
    }
    std::vector<std::byte> buf(kStreamChunk);
    std::uint64_t pos = 0; // next payload offset to emit
    auto emit_zeros = [&](std::uint64_t until) -> Result<void> {
        std::vector<std::byte> zeros;
        while (pos < until) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kStreamChunk, until - pos));
            zeros.assign(n, std::byte{0});
            SVM_CHECK(sink(zeros));
            pos += n;
        }
        return {};
    };
    for (const Extent& e : source.extents) {
        SVM_CHECK(emit_zeros(e.image_offset));
        for (std::uint64_t done = 0; done < e.length;) {
            auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(kStreamChunk, e.length - done));
            auto chunk = std::span(buf).first(n);
            SVM_CHECK(source.file->read_at(e.file_offset + done, chunk));
            SVM_CHECK(sink(chunk));
            done += n;
        }
        pos = e.image_offset + e.length;
    }
    return emit_zeros(source.size);
}

Result<std::vector<std::byte>> copy_and_hash(const PayloadSource& source,
                                             signer::DigestAlgorithm algo, OutputFile* out,
                                             std::uint64_t offset) {
    signer::Hasher hasher(algo);
    std::uint64_t written = 0;
    SVM_CHECK(stream_payload(source, [&](std::span<const std::byte> chunk) -> Result<void> {
        hasher.update(chunk);
        if (out != nullptr)
            SVM_CHECK(out->write_at(offset + written, chunk));
        written += chunk.size();
        return {};
    }));
    return hasher.finish();
}

namespace {

struct DeflateStream {
    z_stream z{};
    bool ready = false;
    ~DeflateStream() {
        if (ready)
            deflateEnd(&z);
    }
};

struct InflateStream {
    z_stream z{};
    bool ready = false;
    ~InflateStream() {
        if (ready)
            inflateEnd(&z);
    }
};

} // namespace

Result<CompressedPayload> gzip_payload(const PayloadSource& source, signer::DigestAlgorithm algo) {
    int memfd = ::memfd_create("svmkit-gzip", MFD_CLOEXEC);
    if (memfd < 0)
        return fail(ExitCode::io, "cannot create a memory file for compression: {}",
                    std::strerror(errno));
    UniqueFd fd(memfd);
    DeflateStream d;
    // windowBits 15 + 16: gzip wrapper; zlib writes mtime 0 and no name.
    if (deflateInit2(&d.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return fail(ExitCode::io, "zlib deflateInit2 failed");
    d.ready = true;
    signer::Hasher hasher(algo);
    std::vector<std::byte> outbuf(kStreamChunk);
    std::uint64_t out_size = 0;
    auto drain = [&](int flush) -> Result<void> {
        do {
            d.z.next_out = reinterpret_cast<Bytef*>(outbuf.data());
            d.z.avail_out = static_cast<uInt>(outbuf.size());
            int rc = deflate(&d.z, flush);
            if (rc == Z_STREAM_ERROR)
                return fail(ExitCode::io, "zlib deflate failed");
            std::size_t produced = outbuf.size() - d.z.avail_out;
            for (std::size_t done = 0; done < produced;) {
                ssize_t n = ::write(fd.get(), outbuf.data() + done, produced - done);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0)
                    return fail(ExitCode::io, "writing compressed kernel: {}",
                                std::strerror(errno));
                done += static_cast<std::size_t>(n);
            }
            out_size += produced;
            if (flush == Z_FINISH && rc == Z_STREAM_END)
                return {};
        } while (d.z.avail_out == 0 || flush == Z_FINISH);
        return {};
    };
    SVM_CHECK(stream_payload(source, [&](std::span<const std::byte> chunk) -> Result<void> {
        hasher.update(chunk);
        d.z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(chunk.data()));
        d.z.avail_in = static_cast<uInt>(chunk.size());
        return drain(Z_NO_FLUSH);
    }));
    SVM_CHECK(drain(Z_FINISH));

    auto file = InputFile::open(fmt::format("/proc/self/fd/{}", fd.get()));
    if (!file)
        return svmkit::unexpected(file.error());
    auto shared = std::make_shared<const InputFile>(std::move(*file));
    CompressedPayload result;
    result.stored = PayloadSource::from_file(shared);
    result.stored.label = source.label + " (gzip)";
    result.stored.size = out_size;
    result.stored.extents = {Extent{0, out_size, 0}};
    result.unpacked_digest = hasher.finish();
    return result;
}

Result<std::uint64_t>
gunzip_stream(const PayloadSource& source, std::uint64_t max_output,
              const std::function<Result<void>(std::span<const std::byte>)>& sink) {
    InflateStream s;
    if (inflateInit2(&s.z, 15 + 16) != Z_OK)
        return fail(ExitCode::io, "zlib inflateInit2 failed");
    s.ready = true;
    std::vector<std::byte> outbuf(kStreamChunk);
    std::uint64_t produced_total = 0;
    bool ended = false;
    SVM_CHECK(stream_payload(source, [&](std::span<const std::byte> chunk) -> Result<void> {
        if (ended)
            return fail(ExitCode::malformed, "{}: bytes after the end of the gzip stream",
                        source.label);
        s.z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(chunk.data()));
        s.z.avail_in = static_cast<uInt>(chunk.size());
        while (s.z.avail_in > 0 && !ended) {
            s.z.next_out = reinterpret_cast<Bytef*>(outbuf.data());
            s.z.avail_out = static_cast<uInt>(outbuf.size());
            int rc = inflate(&s.z, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                return fail(ExitCode::malformed, "{}: corrupt gzip data ({})", source.label,
                            s.z.msg != nullptr ? s.z.msg : "zlib error");
            std::size_t produced = outbuf.size() - s.z.avail_out;
            produced_total += produced;
            if (produced_total > max_output)
                return fail(ExitCode::malformed, "{}: unpacks to more than the {} bytes expected",
                            source.label, max_output);
            SVM_CHECK(sink(std::span(outbuf).first(produced)));
            if (rc == Z_STREAM_END) {
                ended = true;
                if (s.z.avail_in > 0)
                    return fail(ExitCode::malformed, "{}: bytes after the end of the gzip stream",
                                source.label);
            }
            if (rc == Z_BUF_ERROR && produced == 0)
                break;
        }
        return {};
    }));
    if (!ended) {
        // Flush any output still held by zlib.
        for (;;) {
            s.z.next_out = reinterpret_cast<Bytef*>(outbuf.data());
            s.z.avail_out = static_cast<uInt>(outbuf.size());
            int rc = inflate(&s.z, Z_FINISH);
            std::size_t produced = outbuf.size() - s.z.avail_out;
            produced_total += produced;
            if (produced_total > max_output)
                return fail(ExitCode::malformed, "{}: unpacks to more than the {} bytes expected",
                            source.label, max_output);
            if (produced > 0)
                SVM_CHECK(sink(std::span(outbuf).first(produced)));
            if (rc == Z_STREAM_END)
                break;
            if (produced == 0)
                return fail(ExitCode::malformed, "{}: gzip stream is truncated", source.label);
        }
    }
    return produced_total;
}

} // namespace svmkit::format
