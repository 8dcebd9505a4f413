#include "format/copy_pipeline.hpp"
#include "base/output_file.hpp"

#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace svmkit::format {

namespace {

// A fixed ring of buffers passed between the I/O thread (fills and writes
// them) and the hashing thread (consumes them, then frees them).
//
// Invariants: every buffer index is in exactly one of free_ or filled_, or
// held by one of the two threads; filled_ is in stream order; once `done_`
// is set no more buffers enter filled_.
class BufferRing {
  public:
    static constexpr std::size_t kBuffers = 4;
    static constexpr std::size_t kBufferSize = 2u << 20;

    BufferRing() {
        for (std::size_t i = 0; i < kBuffers; ++i) {
            buffers_[i].resize(kBufferSize);
            free_.push_back(i);
        }
    }

    // I/O side.
    std::optional<std::size_t> take_free() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !free_.empty() || cancelled_; });
        if (cancelled_)
            return std::nullopt;
        std::size_t i = free_.front();
        free_.pop_front();
        return i;
    }
    void publish(std::size_t i, std::size_t used) {
        std::lock_guard lock(mu_);
        used_[i] = used;
        filled_.push_back(i);
        cv_.notify_all();
    }
    void finish(std::optional<Error> error) {
        std::lock_guard lock(mu_);
        done_ = true;
        error_ = std::move(error);
        cv_.notify_all();
    }

    // Hashing side: the next filled buffer, or nullopt at the end.
    std::optional<std::size_t> take_filled() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !filled_.empty() || done_; });
        if (filled_.empty())
            return std::nullopt;
        std::size_t i = filled_.front();
        filled_.pop_front();
        return i;
    }
    void release(std::size_t i) {
        std::lock_guard lock(mu_);
        free_.push_back(i);
        cv_.notify_all();
    }
    void cancel() {
        std::lock_guard lock(mu_);
        cancelled_ = true;
        cv_.notify_all();
    }
    std::optional<Error> error() {
        std::lock_guard lock(mu_);
        return error_;
    }

    std::span<std::byte> buffer(std::size_t i) { return buffers_[i]; }
    std::span<const std::byte> filled(std::size_t i) {
        return std::span(buffers_[i]).first(used_[i]);
    }

  private:
    std::array<std::vector<std::byte>, kBuffers> buffers_;
    std::array<std::size_t, kBuffers> used_{};
    std::deque<std::size_t> free_, filled_;
    bool done_ = false;
    bool cancelled_ = false;
    std::optional<Error> error_;
    std::mutex mu_;
    std::condition_variable cv_;
};

// Produces the payload into ring buffers, writing each to the output first.
Result<void> produce(const PayloadSource& source, OutputFile& out, std::uint64_t offset,
                     BufferRing& ring) {
    std::uint64_t pos = 0;
    std::size_t extent = 0;
    while (pos < source.size) {
        auto slot = ring.take_free();
        if (!slot)
            return {};
        auto buf = ring.buffer(*slot);
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), source.size - pos));
        std::size_t filled = 0;
        while (filled < want) {
            const std::uint64_t at = pos + filled;
            while (extent < source.extents.size() &&
                   source.extents[extent].image_offset + source.extents[extent].length <= at)
                ++extent;
            const Extent* e = extent < source.extents.size() ? &source.extents[extent] : nullptr;
            if (e == nullptr || at < e->image_offset) {
                // A gap before the next extent (or after the last): zeros.
                const std::uint64_t gap_end = e == nullptr ? source.size : e->image_offset;
                const auto n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(want - filled, gap_end - at));
                std::fill_n(buf.begin() + static_cast<std::ptrdiff_t>(filled), n, std::byte{0});
                filled += n;
                continue;
            }
            const auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(want - filled, e->image_offset + e->length - at));
            SVM_CHECK(source.file->read_at(e->file_offset + (at - e->image_offset),
                                           buf.subspan(filled, n)));
            filled += n;
        }
        SVM_CHECK(out.write_at(offset + pos, buf.first(want)));
        ring.publish(*slot, want);
        pos += want;
    }
    return {};
}

} // namespace

Result<std::vector<std::byte>> copy_and_hash_pipelined(const PayloadSource& source,
                                                       signer::DigestAlgorithm algo,
                                                       OutputFile& out,
                                                       std::uint64_t offset) {
    if (!source.file)
        return copy_and_hash(source, algo, &out, offset);
    BufferRing ring;
    std::jthread io([&] {
        auto r = produce(source, out, offset, ring);
        ring.finish(r ? std::nullopt : std::optional<Error>(r.error()));
    });
    signer::Hasher hasher(algo);
    while (auto slot = ring.take_filled()) {
        hasher.update(ring.filled(*slot));
        ring.release(*slot);
    }
    io.join();
    if (auto err = ring.error())
        return svmkit::unexpected(std::move(*err));
    return hasher.finish();
}

} // namespace svmkit::format
