// The verification policy from the command line, shared by `verify` (what a
// verifier accepts) and `boot` (what the simulated ultravisor trusts).
#include "wrapper/commands.hpp"

#include "format/verify.hpp"

namespace svmkit::cli {

Result<format::VerifyPolicy> load_verify_policy(const std::vector<std::string>& trusted_keys,
                                                const std::vector<std::string>& revoked_keys,
                                                std::size_t require_signatures,
                                                std::uint64_t min_security_version) {
    format::VerifyPolicy policy;
    for (const std::string& path : trusted_keys) {
        SVM_TRY(key, signer::PublicKey::load(path));
        policy.trusted_keys.push_back(std::move(key));
    }
    for (const std::string& spec : revoked_keys) {
        if (auto id = signer::parse_key_id_hex(spec)) {
            policy.revoked_keys.push_back(*id);
            continue;
        }
        SVM_TRY(key, signer::PublicKey::load(spec));
        policy.revoked_keys.push_back(key.key_id());
    }
    if (require_signatures == 0)
        return fail(ExitCode::usage, "--require-signatures must be at least 1");
    std::size_t distinct_trusted = 0;
    for (std::size_t i = 0; i < policy.trusted_keys.size(); ++i) {
        bool dup = false;
        for (std::size_t j = 0; j < i; ++j)
            dup = dup || policy.trusted_keys[j].key_id() == policy.trusted_keys[i].key_id();
        distinct_trusted += dup ? 0 : 1;
    }
    if (require_signatures > distinct_trusted)
        return fail(
            ExitCode::usage,
            "--require-signatures {} is more than the {} distinct trusted keys given; no image "
            "could pass",
            require_signatures, distinct_trusted);
    policy.required_signatures = require_signatures;
    policy.min_security_version = min_security_version;
    return policy;
}

} // namespace svmkit::cli
