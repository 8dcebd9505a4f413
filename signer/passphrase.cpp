// Passphrases of encrypted key files: resolved from their source (an
// environment variable or a file, never argv) only when OpenSSL asks for one,
// i.e. when the key really is encrypted; wiped when no longer needed.
#include "signer/signer_internal.hpp"

#include "base/file.hpp"

#include <cstdlib>
#include <cstring>

#include <openssl/crypto.h>

namespace svmkit::signer::detail {

PassphraseState::~PassphraseState() {
    if (passphrase && !passphrase->empty())
        OPENSSL_cleanse(passphrase->data(), passphrase->size());
}

void PassphraseState::resolve() {
    resolved = true;
    if (source == nullptr)
        return;
    if (source->env_var && source->file) {
        error = Error{ExitCode::usage, "give the passphrase through an environment variable or "
                                       "a file, not both"};
        return;
    }
    if (source->env_var) {
        const char* value = std::getenv(source->env_var->c_str());
        if (value == nullptr) {
            error = Error{ExitCode::usage, fmt::format("{}: passphrase variable {} is not set",
                                                       *key_path, *source->env_var)};
            return;
        }
        passphrase = std::string(value);
        return;
    }
    if (source->file) {
        auto content = read_small_file(*source->file, 64ull * 1024);
        if (!content) {
            error = content.error();
            return;
        }
        std::string text(reinterpret_cast<const char*>(content->data()), content->size());
        OPENSSL_cleanse(content->data(), content->size());
        std::size_t end = text.find('\n');
        std::string line = text.substr(0, end);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        OPENSSL_cleanse(text.data(), text.size());
        passphrase = std::move(line);
    }
}

int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) noexcept {
    auto* state = static_cast<PassphraseState*>(user);
    if (state == nullptr)
        return -1;
    try {
        state->asked = true;
        if (!state->resolved)
            state->resolve();
        if (state->error || !state->passphrase)
            return -1;
        if (size < 0 || state->passphrase->size() > static_cast<std::size_t>(size)) {
            state->error = Error{ExitCode::usage, fmt::format("{}: passphrase longer than {} bytes",
                                                              *state->key_path, size)};
            return -1;
        }
        // OpenSSL takes the length returned, not a terminator.
        std::memcpy(buf, state->passphrase->data(), // NOLINT(bugprone-not-null-terminated-result)
                    state->passphrase->size());
        state->supplied = true;
        return static_cast<int>(state->passphrase->size());
    } catch (...) {
        return -1;
    }
}

} // namespace svmkit::signer::detail
