#include "base/file_identity.hpp"

#include <cstdio>

namespace svmkit {

const char* file_type_name(mode_t mode) {
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a pipe or FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

IoRegistry& IoRegistry::instance() {
    static IoRegistry registry;
    return registry;
}

IoRegistry::Scope::Scope() {
    IoRegistry::instance().reset();
    IoRegistry::instance().active_ = true;
}

IoRegistry::Scope::~Scope() {
    IoRegistry::instance().reset();
}

void IoRegistry::add_input(FileIdentity id, const std::string& path) {
    if (active_ && !input_named(id))
        inputs_.push_back({id, path});
}

void IoRegistry::allow_in_place(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0)
        in_place_.push_back(identity_of(st));
}

std::optional<std::string> IoRegistry::input_named(FileIdentity id) const {
    for (const FileIdentity& edited : in_place_)
        if (edited == id)
            return std::nullopt;
    for (const Input& in : inputs_)
        if (in.id == id)
            return in.path;
    return std::nullopt;
}

void IoRegistry::add_output(std::optional<FileIdentity> id, const std::string& resolved,
                            const std::string& path) {
    if (active_)
        outputs_.push_back({id, resolved, path});
}

std::optional<std::string> IoRegistry::output_named(std::optional<FileIdentity> id,
                                                    const std::string& resolved) const {
    for (const Output& out : outputs_)
        if ((id && out.id == id) || (!resolved.empty() && out.resolved == resolved))
            return out.path;
    return std::nullopt;
}

Result<void> IoRegistry::claim_stdin(const std::string& who) {
    if (active_ && !stdin_owner_.empty())
        return fail(ExitCode::usage,
                    "{}: already read for an earlier '-'; standard input can be read only once",
                    who);
    stdin_owner_ = who;
    return {};
}

Result<void> IoRegistry::claim_stdout(const std::string& who) {
    if (active_ && !stdout_owner_.empty())
        return fail(ExitCode::usage, "{}: standard output ('-') is already written by {}", who,
                    stdout_owner_);
    stdout_owner_ = who;
    return {};
}

void IoRegistry::reset() {
    *this = IoRegistry();
}

std::FILE* human_stream() {
    return IoRegistry::instance().stdout_is_data() ? stderr : stdout;
}

} // namespace svmkit
