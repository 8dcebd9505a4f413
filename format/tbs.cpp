#include "format/tbs.hpp"

#include <string_view>

namespace svmkit::format {

namespace {

class TbsWriter {
  public:
    void field(std::uint16_t tag, std::span<const std::byte> value) {
        put_be(tag, 2);
        put_be(value.size(), 4);
        out_.insert(out_.end(), value.begin(), value.end());
    }
    void field(std::uint16_t tag, std::string_view text) {
        field(tag, std::as_bytes(std::span(text.data(), text.size())));
    }
    void field_u64(std::uint16_t tag, std::uint64_t v) {
        put_be(tag, 2);
        put_be(8, 4);
        put_be(v, 8);
    }
    void field_u32(std::uint16_t tag, std::uint32_t v) {
        put_be(tag, 2);
        put_be(4, 4);
        put_be(v, 4);
    }
    void empty(std::uint16_t tag) { field(tag, std::span<const std::byte>{}); }
    void raw(std::string_view text) {
        for (char c : text)
            out_.push_back(static_cast<std::byte>(c));
    }
    std::vector<std::byte> take() { return std::move(out_); }

  private:
    void put_be(std::uint64_t v, int bytes) {
        for (int i = bytes - 1; i >= 0; --i)
            out_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    }
    std::vector<std::byte> out_;
};

} // namespace

std::vector<std::byte> encode_tbs(const Manifest& m) {
    TbsWriter w;
    w.raw("svmkit-tbs-v1\n");
    w.field_u32(0x0001, m.format_version);
    w.field(0x0002, arch_name(m.arch));
    w.field_u64(0x0003, m.image_base);
    w.field_u64(0x0004, m.entry);
    w.field_u64(0x0005, m.security_version);
    w.field_u64(0x0006, m.creation_time);
    w.field_u64(0x0007, m.swiotlb_size);
    w.field(0x0008, signer::digest_name(m.hash));
    for (ComponentKind kind : kAllComponentKinds) {
        const Component* c = m.find(kind);
        if (c == nullptr)
            continue;
        w.field(0x0100, component_name(kind));
        w.field_u64(0x0101, c->address);
        w.field_u64(0x0102, c->size);
        w.field(0x0103, compression_name(c->compression));
        w.field(0x0104, c->digest);
        if (c->unpacked_size)
            w.field_u64(0x0105, *c->unpacked_size);
        if (c->unpacked_digest)
            w.field(0x0106, *c->unpacked_digest);
        if (c->kernel) {
            w.field_u64(0x0107, c->kernel->load_address);
            w.field_u64(0x0108, c->kernel->memory_size);
            w.field_u64(0x0109, c->kernel->entry_offset);
        }
        w.empty(0x01ff);
    }
    // The sealed ibm,esm nodes: the encrypted digests and secret files are
    // signed with the components, so nobody holding a machine's public key
    // can swap their own secrets into a signed image. Lockboxes stay out
    // (authorize and revoke keep every signature valid: they decide which
    // machines open the blob, not what it holds), as do the untrusted
    // comments. Without sealed nodes nothing is added: those images' TBS
    // bytes are as before.
    auto sealed = [&w](const EsmSealed& s) {
        w.field(0x0201, s.iv);
        w.field(0x0202, s.mac);
        w.field(0x0203, s.ciphertext);
    };
    if (m.esm.digests) {
        w.empty(0x0200);
        sealed(*m.esm.digests);
    }
    for (const EsmFile& f : m.esm.files) {
        w.field(0x0210, f.name);
        sealed(f.sealed);
    }
    w.empty(0xffff);
    return w.take();
}

} // namespace svmkit::format
