#include "format/verify.hpp"

#include "format/tbs.hpp"

#include <algorithm>
#include <set>
#include <thread>

namespace svmkit::format {

std::string_view signer_status_name(SignerStatus s) {
    switch (s) {
    case SignerStatus::trusted:
        return "trusted";
    case SignerStatus::revoked:
        return "revoked";
    case SignerStatus::unknown:
        return "unknown";
    }
    return "?";
}

std::string_view policy_failure_name(PolicyFailure f) {
    switch (f) {
    case PolicyFailure::none:
        return "none";
    case PolicyFailure::no_signature:
        return "no-signature";
    case PolicyFailure::no_trusted_signature:
        return "no-trusted-signature";
    case PolicyFailure::bad_signature:
        return "bad-signature";
    case PolicyFailure::revoked_key:
        return "revoked-key";
    case PolicyFailure::too_few_signatures:
        return "too-few-signatures";
    case PolicyFailure::rollback:
        return "rollback";
    }
    return "?";
}

PolicyVerdict evaluate_policy(const Manifest& m, const VerifyPolicy& policy) {
    PolicyVerdict v;
    const std::vector<std::byte> tbs = encode_tbs(m);
    std::set<signer::KeyId> good;
    bool any_revoked = false;
    bool any_bad_trusted = false;
    std::string bad_detail;
    for (const Signature& s : m.signatures) {
        SignatureCheck check{s.algorithm, s.key_id, SignerStatus::unknown, false, {}};
        const signer::PublicKey* key = nullptr;
        for (const auto& k : policy.trusted_keys)
            if (k.key_id() == s.key_id)
                key = &k;
        if (std::find(policy.revoked_keys.begin(), policy.revoked_keys.end(), s.key_id) !=
            policy.revoked_keys.end()) {
            check.status = SignerStatus::revoked;
            any_revoked = true;
        } else if (key != nullptr) {
            check.status = SignerStatus::trusted;
        }
        if (key != nullptr) {
            auto r = key->verify(s.algorithm, tbs, s.value);
            check.valid = r.has_value();
            if (!r)
                check.detail = r.error().message;
        } else {
            check.detail = "key is not in the trusted set";
        }
        if (check.status == SignerStatus::trusted) {
            if (check.valid)
                good.insert(s.key_id);
            else {
                any_bad_trusted = true;
                bad_detail = fmt::format("signature by trusted key {} does not verify ({})",
                                         signer::key_id_hex(s.key_id), check.detail);
            }
        }
        v.signatures.push_back(std::move(check));
    }
    v.good_signers = good.size();
    auto set = [&](PolicyFailure f, std::string msg) {
        v.failure = f;
        v.message = std::move(msg);
    };
    if (m.signatures.empty())
        set(PolicyFailure::no_signature, "the image carries no signature");
    else if (any_revoked)
        set(PolicyFailure::revoked_key, "the image is signed by a revoked key");
    else if (any_bad_trusted)
        set(PolicyFailure::bad_signature, bad_detail);
    else if (good.empty())
        set(PolicyFailure::no_trusted_signature, "no signature by a trusted key");
    else if (good.size() < policy.required_signatures)
        set(PolicyFailure::too_few_signatures,
            fmt::format("{} distinct trusted signers, policy requires {}", good.size(),
                        policy.required_signatures));
    else if (m.security_version < policy.min_security_version)
        set(PolicyFailure::rollback, fmt::format("security version {} is below the minimum {}",
                                                 m.security_version, policy.min_security_version));
    return v;
}

PayloadSource component_source(const SecureImage& image, ComponentKind kind) {
    const ImageSection* s = image.section(kind);
    PayloadSource src;
    src.label = fmt::format("{} ({})", image.path(), s->name);
    src.file = image.file;
    src.size = s->size;
    src.extents = {Extent{s->offset, s->size, 0}};
    return src;
}

namespace {

ComponentCheck check_component(const SecureImage& image, const Component& c,
                               signer::DigestAlgorithm algo) {
    ComponentCheck out;
    out.kind = c.kind;
    const PayloadSource src = component_source(image, c.kind);
    auto stored = copy_and_hash(src, algo, nullptr, 0);
    if (!stored) {
        out.detail = stored.error().message;
        return out;
    }
    out.stored_digest = std::move(*stored);
    out.stored_ok = out.stored_digest == c.digest;
    if (c.compression == Compression::gzip) {
        signer::Hasher h(algo);
        auto n = gunzip_stream(src, *c.unpacked_size,
                               [&](std::span<const std::byte> chunk) -> Result<void> {
                                   h.update(chunk);
                                   return {};
                               });
        if (!n) {
            out.unpacked_ok = false;
            out.detail = n.error().message;
            return out;
        }
        out.unpacked_digest = h.finish();
        out.unpacked_ok = *n == *c.unpacked_size && *out.unpacked_digest == *c.unpacked_digest;
        if (*n != *c.unpacked_size)
            out.detail =
                fmt::format("unpacks to {} bytes, the manifest says {}", *n, *c.unpacked_size);
    }
    return out;
}

} // namespace

Result<VerifyReport> verify_image(const SecureImage& image, const VerifyPolicy& policy) {
    const Manifest& m = image.manifest;
    VerifyReport report;
    report.components.resize(m.components.size());
    {
        std::vector<std::jthread> workers;
        for (std::size_t i = 0; i < m.components.size(); ++i) {
            auto job = [&, i] {
                report.components[i] = check_component(image, m.components[i], m.hash);
            };
            if (m.components[i].size >= (4u << 20))
                workers.emplace_back(job);
            else
                job();
        }
    }
    for (const ComponentCheck& c : report.components) {
        const auto name = component_name(c.kind);
        if (!c.stored_ok)
            report.failures.push_back(
                c.stored_digest.empty()
                    ? fmt::format("{}: cannot read: {}", name, c.detail)
                    : fmt::format("{}: digest mismatch: manifest {}, image {}", name,
                                  hex(m.find(c.kind)->digest), hex(c.stored_digest)));
        if (c.unpacked_ok.has_value() && !*c.unpacked_ok)
            report.failures.push_back(fmt::format("{}: unpacked digest mismatch{}", name,
                                                  c.detail.empty() ? "" : ": " + c.detail));
    }
    report.policy = evaluate_policy(m, policy);
    if (!report.policy.ok())
        report.failures.push_back(fmt::format("policy: {}", report.policy.message));
    return report;
}

} // namespace svmkit::format
