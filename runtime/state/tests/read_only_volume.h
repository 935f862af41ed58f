// runtime/state/tests/read_only_volume.h — for tests: makes this process's file writes fail
// with EROFS, as they do after the kernel remounts a volume read-only under a running process
// (ext4 `errors=remount-ro`, a detached network disk). No mount is needed, so it works
// unprivileged and as root alike: a seccomp filter answers the write system calls with EROFS.
//
// It cannot be undone, and it holds for the calling thread only: call it in a forked child
// that has no other threads. Writes to stdin/stdout/stderr (fds 0-2) are still allowed.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstddef>
#include <vector>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

namespace agentry::state {

// False when the kernel refused the filter (seccomp unavailable).
inline bool MakeFileWritesFailReadOnly() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
  constexpr uint32_t kReadOnly = SECCOMP_RET_ERRNO | (EROFS & SECCOMP_RET_DATA);
  std::vector<sock_filter> p;
  const auto load = [&](uint32_t offset) {
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset));
  };
  const auto ret = [&](uint32_t value) { p.push_back(BPF_STMT(BPF_RET | BPF_K, value)); };
  load(offsetof(seccomp_data, arch));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0));
  ret(kAllow);
  // Calls that only ever change files.
  for (const long nr : {
#ifdef __NR_rename
           long{__NR_rename}, long{__NR_unlink}, long{__NR_mkdir}, long{__NR_creat},
#endif
           long{__NR_pwrite64}, long{__NR_pwritev}, long{__NR_pwritev2}, long{__NR_renameat},
           long{__NR_renameat2}, long{__NR_unlinkat}, long{__NR_mkdirat}, long{__NR_ftruncate},
           long{__NR_fallocate}}) {
    load(offsetof(seccomp_data, nr));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
    ret(kReadOnly);
  }
  // write(2) and writev(2) past stderr.
  for (const long nr : {long{__NR_write}, long{__NR_writev}}) {
    load(offsetof(seccomp_data, nr));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 3));
    load(offsetof(seccomp_data, args[0]));  // the fd's low 32 bits (little-endian)
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 2, 0, 1));
    ret(kReadOnly);
  }
  // openat(2) for writing or creating.
  load(offsetof(seccomp_data, nr));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3));
  load(offsetof(seccomp_data, args[2]));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0, 1));
  ret(kReadOnly);
  ret(kAllow);
  sock_fprog program{static_cast<unsigned short>(p.size()), p.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

}  // namespace agentry::state
