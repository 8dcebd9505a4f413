#include "format/esm_blob.hpp"

#include "format/dtb.hpp"
#include "format/fdt_codec.hpp"
#include "format/manifest.hpp"
#include "signer/openssl_util.hpp"

#include <algorithm>
#include <set>

namespace svmkit::format {

namespace {

using fdt::FdtBuilder;
using fdt::FdtReader;
using fdt::PropDecoder;

constexpr const char* kSubject = "esm blob";
constexpr const char* kSymAlgorithm = "AES256-GCM";
constexpr const char* kFingerprintAlgorithm = "SHA256";
constexpr const char* kDigestAlgorithm = "SHA512";
constexpr const char* kOriginLockbox = "origin-lockbox";
constexpr const char* kLockboxPrefix = "lockbox-";

// "lockbox-<N>", N decimal in [1, 2^32), no leading zeros; origin-lockbox is 0.
std::optional<std::uint32_t> parse_lockbox_name(std::string_view name) {
    if (name == kOriginLockbox)
        return 0u;
    if (!name.starts_with(kLockboxPrefix))
        return std::nullopt;
    std::string_view digits = name.substr(std::string_view(kLockboxPrefix).size());
    if (digits.empty() || digits.size() > 9 || digits[0] == '0' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return static_cast<std::uint32_t>(std::stoul(std::string(digits)));
}

// A tree that is exactly `bytes` (totalsize == size), fully checked.
Result<AlignedFdt> checked_tree(std::span<const std::byte> bytes, const std::string& where) {
    if (bytes.size() > kEsmMaxBlobSize)
        return fail(ExitCode::malformed, "{}: {} bytes is larger than the {} byte limit", where,
                    bytes.size(), kEsmMaxBlobSize);
    SVM_CHECK(check_device_tree(bytes, where));
    AlignedFdt tree(bytes);
    if (fdt_num_mem_rsv(tree.data()) != 0)
        return fail(ExitCode::malformed, "{}: unexpected memory reservation entries", where);
    return tree;
}

// The root node of a tree whose only root property is compatible = `want`.
Result<void> check_root(const FdtReader& r, const std::string& where, std::string_view want) {
    SVM_TRY(root_props, r.properties(0, {"compatible"}));
    PropDecoder root(root_props, "the root node", where, kSubject);
    SVM_TRY(compatible, root.str("compatible"));
    if (compatible != want)
        return fail(ExitCode::malformed, "{}: {}: root compatible is '{}', expected '{}'", where,
                    kSubject, compatible, want);
    return {};
}

Result<std::string> comment_of(const PropDecoder& d, const std::string& where,
                               const std::string& node) {
    SVM_TRY(c, d.str("untrusted-comment"));
    if (!esm_comment_valid(c))
        return fail(ExitCode::malformed, "{}: {}: untrusted-comment of {} is not printable", where,
                    kSubject, node);
    return c;
}

Result<EsmSealed> read_sealed(const FdtReader& r, int node, const std::string& label,
                              const std::string& where) {
    SVM_TRY(props,
            r.properties(node, {"algorithm", "untrusted-comment", "ciphertext", "iv", "mac"}));
    SVM_TRY(kids, r.children(node));
    if (!kids.empty())
        return fail(ExitCode::malformed, "{}: {}: unexpected node under {}", where, kSubject,
                    label);
    PropDecoder d(props, label, where, kSubject);
    SVM_TRY(algorithm, d.str("algorithm"));
    if (algorithm != kSymAlgorithm)
        return fail(ExitCode::malformed, "{}: {}: {} uses algorithm '{}', only {} is supported",
                    where, kSubject, label, algorithm, kSymAlgorithm);
    EsmSealed s;
    SVM_TRY(comment, comment_of(d, where, label));
    SVM_TRY(iv, d.bytes("iv"));
    SVM_TRY(mac, d.bytes("mac", kEsmMacSize));
    SVM_TRY(ciphertext, d.bytes("ciphertext"));
    if (iv.size() < kEsmMinIvSize || iv.size() > kEsmMaxIvSize)
        return fail(ExitCode::malformed, "{}: {}: {}/iv must be {} to {} bytes, not {}", where,
                    kSubject, label, kEsmMinIvSize, kEsmMaxIvSize, iv.size());
    s.comment = std::move(comment);
    s.iv = std::move(iv);
    s.mac = std::move(mac);
    s.ciphertext = std::move(ciphertext);
    return s;
}

void write_sealed(FdtBuilder& b, const char* name, const EsmSealed& s) {
    b.begin(name);
    b.prop_string("algorithm", kSymAlgorithm);
    b.prop_string("untrusted-comment", s.comment);
    b.prop("ciphertext", s.ciphertext);
    b.prop("iv", s.iv);
    b.prop("mac", s.mac);
    b.end();
}

Result<EsmLockbox> read_lockbox(const FdtReader& r, int node, std::uint32_t number,
                                const std::string& label, const std::string& where) {
    SVM_TRY(props, r.properties(node, {"untrusted-comment", "encrypted-symkey"}));
    PropDecoder d(props, label, where, kSubject);
    EsmLockbox box;
    box.number = number;
    SVM_TRY(comment, comment_of(d, where, label));
    SVM_TRY(wrapped, d.bytes("encrypted-symkey"));
    if (wrapped.size() < kEsmMinWrappedKeySize || wrapped.size() > kEsmMaxWrappedKeySize)
        return fail(ExitCode::malformed,
                    "{}: {}: {}/encrypted-symkey is {} bytes, not an RSA 2048..8192 ciphertext",
                    where, kSubject, label, wrapped.size());
    box.comment = std::move(comment);
    box.encrypted_symkey = std::move(wrapped);
    SVM_TRY(kids, r.children(node));
    bool have_fingerprint = false;
    for (const auto& [name, off] : kids) {
        if (name != "pubkey-fingerprint")
            return fail(ExitCode::malformed, "{}: {}: unknown node '{}' in {}", where, kSubject,
                        name, label);
        SVM_TRY(grandkids, r.children(off));
        if (!grandkids.empty())
            return fail(ExitCode::malformed, "{}: {}: unexpected node under {}/{}", where, kSubject,
                        label, name);
        SVM_TRY(fprops, r.properties(off, {"algorithm", "hash"}));
        PropDecoder f(fprops, label + "/pubkey-fingerprint", where, kSubject);
        SVM_TRY(algorithm, f.str("algorithm"));
        if (algorithm != kFingerprintAlgorithm)
            return fail(ExitCode::malformed, "{}: {}: {} fingerprint algorithm '{}' is not {}",
                        where, kSubject, label, algorithm, kFingerprintAlgorithm);
        SVM_TRY(hash, f.bytes("hash", box.fingerprint.size()));
        std::copy(hash.begin(), hash.end(), box.fingerprint.begin());
        have_fingerprint = true;
    }
    if (!have_fingerprint)
        return fail(ExitCode::malformed, "{}: {}: {} has no pubkey-fingerprint", where, kSubject,
                    label);
    return box;
}

Result<void> read_lockboxes(const FdtReader& r, int node, EsmBlob& blob, const std::string& where) {
    SVM_TRY(props, r.properties(node, {}));
    (void)props;
    SVM_TRY(kids, r.children(node));
    if (kids.size() > kEsmMaxLockboxes)
        return fail(ExitCode::malformed, "{}: {}: {} lockboxes, at most {} are accepted", where,
                    kSubject, kids.size(), kEsmMaxLockboxes);
    for (const auto& [name, off] : kids) {
        auto number = parse_lockbox_name(name);
        if (!number)
            return fail(ExitCode::malformed, "{}: {}: unexpected lockbox name '{}'", where,
                        kSubject, name);
        SVM_TRY(box, read_lockbox(r, off, *number, name, where));
        blob.lockboxes.push_back(std::move(box));
    }
    std::sort(blob.lockboxes.begin(), blob.lockboxes.end(),
              [](const EsmLockbox& a, const EsmLockbox& b) { return a.number < b.number; });
    return {};
}

Result<void> read_digest_node(const FdtReader& r, int node, EsmBlob& blob,
                              const std::string& where) {
    SVM_TRY(props, r.properties(node, {}));
    (void)props;
    SVM_TRY(kids, r.children(node));
    for (const auto& [name, off] : kids) {
        if (name != "digests-fdt")
            return fail(ExitCode::malformed, "{}: {}: unknown node '{}' in /digest", where,
                        kSubject, name);
        SVM_TRY(sealed, read_sealed(r, off, "/digest/digests-fdt", where));
        blob.digests = std::move(sealed);
    }
    return {};
}

Result<void> read_files_fdt(std::span<const std::byte> bytes, EsmBlob& blob,
                            const std::string& where) {
    const std::string inner = where + ": /file/files-fdt";
    SVM_TRY(tree, checked_tree(bytes, inner));
    FdtReader r(tree.data(), inner, kSubject);
    SVM_CHECK(check_root(r, inner, "ibm,esm-file"));
    SVM_TRY(kids, r.children(0));
    for (const auto& [name, off] : kids) {
        if (name != "files")
            return fail(ExitCode::malformed, "{}: unknown node '/{}'", inner, name);
        SVM_TRY(fprops, r.properties(off, {}));
        (void)fprops;
        SVM_TRY(files, r.children(off));
        if (files.size() > kEsmMaxFiles)
            return fail(ExitCode::malformed, "{}: {} files, at most {} are accepted", inner,
                        files.size(), kEsmMaxFiles);
        for (const auto& [fname, foff] : files) {
            if (!esm_file_name_valid(fname))
                return fail(ExitCode::malformed, "{}: file name '{}' is not valid", inner, fname);
            SVM_TRY(sealed, read_sealed(r, foff, "/files/" + fname, inner));
            blob.files.push_back(EsmFile{fname, std::move(sealed)});
        }
    }
    return {};
}

std::vector<std::byte> encode_files_fdt(const std::vector<EsmFile>& files) {
    FdtBuilder b;
    b.finish_reservemap();
    b.begin("");
    b.prop_string("compatible", "ibm,esm-file");
    b.begin("files");
    for (const EsmFile& f : files)
        write_sealed(b, f.name.c_str(), f.sealed);
    b.end();
    b.end();
    return b.finish();
}

Result<void> read_file_node(const FdtReader& r, int node, EsmBlob& blob, const std::string& where) {
    SVM_TRY(props, r.properties(node, {"files-fdt"}));
    SVM_TRY(kids, r.children(node));
    if (!kids.empty())
        return fail(ExitCode::malformed, "{}: {}: unexpected node '{}' in /file", where, kSubject,
                    kids.front().first);
    if (auto it = props.find("files-fdt"); it != props.end())
        SVM_CHECK(read_files_fdt(it->second, blob, where));
    return {};
}

} // namespace

std::string EsmLockbox::node_name() const {
    return number == 0 ? std::string(kOriginLockbox)
                       : std::string(kLockboxPrefix) + std::to_string(number);
}

const EsmLockbox* EsmBlob::origin() const {
    return !lockboxes.empty() && lockboxes.front().number == 0 ? &lockboxes.front() : nullptr;
}

const EsmLockbox* EsmBlob::find(const EsmFingerprint& fingerprint) const {
    for (const EsmLockbox& box : lockboxes)
        if (box.fingerprint == fingerprint)
            return &box;
    return nullptr;
}

const EsmFile* EsmBlob::file(const std::string& name) const {
    for (const EsmFile& f : files)
        if (f.name == name)
            return &f;
    return nullptr;
}

bool esm_file_name_valid(std::string_view name) {
    auto alpha = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    };
    auto rest = [&](char c) {
        return alpha(c) || (c >= '0' && c <= '9') || c == ',' || c == '.' || c == '_' || c == '+' ||
               c == '-';
    };
    return !name.empty() && name.size() <= kEsmMaxFileNameLength && alpha(name[0]) &&
           std::all_of(name.begin() + 1, name.end(), rest);
}

bool esm_comment_valid(std::string_view comment) {
    return std::all_of(comment.begin(), comment.end(),
                       [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string esm_fingerprint_hex(const EsmFingerprint& f) {
    return hex(f);
}

std::optional<EsmFingerprint> parse_esm_fingerprint_hex(std::string_view text) {
    EsmFingerprint f{};
    if (text.size() != f.size() * 2)
        return std::nullopt;
    for (std::size_t i = 0; i < f.size(); ++i) {
        int hi = signer::detail::hex_nibble(text[2 * i]);
        int lo = signer::detail::hex_nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        f[i] = static_cast<std::byte>(hi * 16 + lo);
    }
    return f;
}

bool is_esm_root_node(std::string_view name) {
    return name == "lockboxes" || name == "digest" || name == "file";
}

void write_esm_nodes(FdtBuilder& b, const EsmBlob& blob) {
    if (!blob.lockboxes.empty()) {
        b.begin("lockboxes");
        for (const EsmLockbox& box : blob.lockboxes) {
            b.begin(box.node_name().c_str());
            b.prop_string("untrusted-comment", box.comment);
            b.prop("encrypted-symkey", box.encrypted_symkey);
            b.begin("pubkey-fingerprint");
            b.prop_string("algorithm", kFingerprintAlgorithm);
            b.prop("hash", box.fingerprint);
            b.end();
            b.end();
        }
        b.end();
    }
    if (blob.digests) {
        b.begin("digest");
        write_sealed(b, "digests-fdt", *blob.digests);
        b.end();
    }
    if (!blob.files.empty()) {
        b.begin("file");
        b.prop("files-fdt", encode_files_fdt(blob.files));
        b.end();
    }
}

Result<void> read_esm_node(const FdtReader& r, const std::string& name, int node, EsmBlob& blob) {
    const std::string& where = r.where_;
    if (name == "lockboxes")
        return read_lockboxes(r, node, blob, where);
    if (name == "digest")
        return read_digest_node(r, node, blob, where);
    if (name == "file")
        return read_file_node(r, node, blob, where);
    return fail(ExitCode::malformed, "{}: {}: unknown node '/{}'", where, kSubject, name);
}

Result<void> validate_esm_blob(const EsmBlob& blob, const std::string& where) {
    std::set<std::uint32_t> numbers;
    for (const EsmLockbox& box : blob.lockboxes)
        if (!numbers.insert(box.number).second)
            return fail(ExitCode::malformed, "{}: {}: lockbox {} appears twice", where, kSubject,
                        box.node_name());
    std::set<std::string> names;
    for (const EsmFile& f : blob.files)
        if (!names.insert(f.name).second)
            return fail(ExitCode::malformed, "{}: {}: file '{}' appears twice", where, kSubject,
                        f.name);
    return {};
}

std::vector<std::byte> encode_esm_blob(const EsmBlob& blob) {
    FdtBuilder b;
    b.finish_reservemap();
    b.begin("");
    b.prop_string("compatible", "ibm,esm");
    write_esm_nodes(b, blob);
    b.end();
    return b.finish();
}

Result<EsmBlob> decode_esm_blob(std::span<const std::byte> bytes, const std::string& where) {
    SVM_TRY(tree, checked_tree(bytes, where));
    FdtReader r(tree.data(), where, kSubject);
    SVM_CHECK(check_root(r, where, "ibm,esm"));
    SVM_TRY(kids, r.children(0));
    EsmBlob blob;
    for (const auto& [name, off] : kids) {
        if (!is_esm_root_node(name))
            return fail(ExitCode::malformed, "{}: {}: unknown node '/{}'", where, kSubject, name);
        SVM_CHECK(read_esm_node(r, name, off, blob));
    }
    SVM_CHECK(validate_esm_blob(blob, where));
    return blob;
}

std::vector<std::byte> encode_esm_digests(const EsmDigests& d) {
    FdtBuilder b;
    b.finish_reservemap();
    b.begin("");
    b.prop_string("compatible", "ibm,esm");
    b.begin("digests");
    b.prop_string("algorithm", kDigestAlgorithm);
    if (d.rtas)
        b.prop("rtas", *d.rtas);
    b.prop("kernel", d.kernel);
    b.prop_u32("kernel-size", d.kernel_size);
    if (d.initrd)
        b.prop("initrd", *d.initrd);
    b.prop("bootargs", d.bootargs);
    b.end();
    b.end();
    return b.finish();
}

Result<EsmDigests> decode_esm_digests(std::span<const std::byte> bytes, const std::string& where) {
    const std::string inner = where + ": digests";
    SVM_TRY(tree, checked_tree(bytes, inner));
    FdtReader r(tree.data(), inner, kSubject);
    SVM_CHECK(check_root(r, inner, "ibm,esm"));
    SVM_TRY(kids, r.children(0));
    if (kids.size() != 1 || kids.front().first != "digests")
        return fail(ExitCode::malformed, "{}: expected exactly one /digests node", inner);
    const int node = kids.front().second;
    SVM_TRY(grandkids, r.children(node));
    if (!grandkids.empty())
        return fail(ExitCode::malformed, "{}: unexpected node under /digests", inner);
    SVM_TRY(props, r.properties(
                       node, {"algorithm", "rtas", "kernel", "kernel-size", "initrd", "bootargs"}));
    PropDecoder d(props, "/digests", inner, kSubject);
    SVM_TRY(algorithm, d.str("algorithm"));
    if (algorithm != kDigestAlgorithm)
        return fail(ExitCode::malformed, "{}: digest algorithm '{}' is not {}", inner, algorithm,
                    kDigestAlgorithm);
    EsmDigests out;
    SVM_TRY(kernel, d.bytes("kernel", kEsmDigestSize));
    SVM_TRY(kernel_size, d.u32("kernel-size"));
    SVM_TRY(bootargs, d.bytes("bootargs", kEsmDigestSize));
    out.kernel = std::move(kernel);
    out.kernel_size = kernel_size;
    out.bootargs = std::move(bootargs);
    if (d.has("initrd")) {
        SVM_TRY(initrd, d.bytes("initrd", kEsmDigestSize));
        out.initrd = std::move(initrd);
    }
    if (d.has("rtas")) {
        SVM_TRY(rtas, d.bytes("rtas", kEsmDigestSize));
        out.rtas = std::move(rtas);
    }
    return out;
}

} // namespace svmkit::format
