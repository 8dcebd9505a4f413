#include "base/unix_socket.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>

namespace svmkit {

Result<UniqueFd> connect_unix(const std::string& path, std::string_view socket_name,
                              std::string_view peer, ExitCode refused_code) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path)
        return fail(ExitCode::usage, "{}: {}'s path is too long", path, socket_name);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return fail(ExitCode::io, "socket: {}", std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail(refused_code, "{}: cannot connect to {}: {}", path, peer, std::strerror(errno));
    return fd;
}

} // namespace svmkit
