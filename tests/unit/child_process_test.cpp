// wait_or_kill (base/child_process.hpp): an exiting child's status, a child
// that will not exit killed after the grace period, and a pid that is not a
// child.
#include "base/child_process.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace svmkit;

TEST_CASE("child process: an exiting child's status is returned") {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        ::_exit(7);
    const auto status = wait_or_kill(pid, std::chrono::milliseconds(5000));
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 7);
    // Reaped: no longer a child.
    CHECK_FALSE(wait_or_kill(pid, std::chrono::milliseconds(10)).has_value());
}

TEST_CASE("child process: a child that does not exit is killed after the grace period") {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::signal(SIGTERM, SIG_IGN);
        (void)!::write(ready[1], "r", 1);
        for (;;)
            ::pause();
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1); // SIGTERM is ignored from here on
    ::close(ready[0]);
    ::close(ready[1]);
    ::kill(pid, SIGTERM);
    const auto status = wait_or_kill(pid, std::chrono::milliseconds(50));
    REQUIRE(status.has_value());
    CHECK(WIFSIGNALED(*status));
    CHECK(WTERMSIG(*status) == SIGKILL);
}

TEST_CASE("child process: a pid that is not our child") {
    CHECK_FALSE(wait_or_kill(::getpid(), std::chrono::milliseconds(10)).has_value());
}
