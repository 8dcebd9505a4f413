// The ppc64le Calls' console and stop (guest/hcall_ppc64le.h).
#include "guest/hcall.h"

#include "guest/of_client_ppc64le.h"
#include "guest/rtas_ppc64le.h"

namespace svmkit::guest {

namespace {

[[noreturn]] void spin() {
    for (;;)
        asm volatile("" ::: "memory");
}

} // namespace

void Calls::console_write(const char* s, size_t n) const {
    if (of_ != nullptr && of_stdout_ != 0)
        of_->write(of_stdout_, s, n);
    else
        hvterm_write(*this, vterm_, s, n);
}

void Calls::terminate(uint64_t) const {
    if (secure())
        ucall(UV_SVM_TERMINATE);
    if (of_ != nullptr)
        of_->exit();
    if (rtas_ != nullptr) {
        rtas_os_term(*rtas_, "svmkit stub: stopped the VM after an error");
        rtas_power_off(*rtas_);
    }
    spin();
}

void Calls::exit(uint64_t) const {
    if (of_ != nullptr)
        of_->exit();
    if (rtas_ != nullptr)
        rtas_power_off(*rtas_);
    spin();
}

} // namespace svmkit::guest
