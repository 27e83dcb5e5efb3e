/*
 * clone3 with a function and a stack, which libc does not offer. Used by the
 * addon (to start exec2-init without forking Node) and by exec2-init (to start
 * the task vfork-style). Each includes this once: the symbol is hidden.
 */
#ifndef EXEC2_CLONE3_H
#define EXEC2_CLONE3_H

#include <stddef.h>

#include "compat.h"

/*
 * long e2_clone3_raw(struct e2_clone_args *args, size_t size,
 *                    int (*fn)(void *), void *arg);
 *
 * glibc has no clone3 wrapper taking a function and a stack, and a plain
 * syscall() cannot be used: the child would return into the parent's stack
 * frame on a different stack. The child therefore never returns from here:
 * it calls fn(arg) on the new stack (the kernel sets sp = stack + stack_size)
 * and leaves with SYS_exit. In the parent this returns the pid or -errno.
 */
#if defined(__x86_64__)
__asm__(
    ".pushsection .text\n"
    ".globl e2_clone3_raw\n"
    ".hidden e2_clone3_raw\n"
    ".type e2_clone3_raw,@function\n"
    "e2_clone3_raw:\n"
    "  .cfi_startproc\n"
    "  endbr64\n"
    /* fn and arg go to registers the syscall instruction preserves (it
     * clobbers only rax, rcx and r11) */
    "  mov %rdx, %r8\n"
    "  mov %rcx, %r9\n"
    "  mov $435, %eax\n" /* SYS_clone3 */
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jz 1f\n"
    "  ret\n"
    "1:\n"
    "  .cfi_undefined rip\n" /* stop unwinders: the child has no caller */
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n" /* SysV: rsp 16-aligned at the call */
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n" /* SYS_exit */
    "  syscall\n"
    "  hlt\n"
    "  .cfi_endproc\n"
    ".size e2_clone3_raw, .-e2_clone3_raw\n"
    ".popsection\n");
#elif defined(__aarch64__)
__asm__(
    ".pushsection .text\n"
    ".globl e2_clone3_raw\n"
    ".hidden e2_clone3_raw\n"
    ".type e2_clone3_raw,%function\n"
    "e2_clone3_raw:\n"
    "  .cfi_startproc\n"
    "  hint #34\n" /* bti c */
    /* svc preserves every register but x0 */
    "  mov x10, x2\n"
    "  mov x11, x3\n"
    "  mov x8, #435\n" /* SYS_clone3 */
    "  svc #0\n"
    "  cbz x0, 1f\n"
    "  ret\n"
    "1:\n"
    "  .cfi_undefined x30\n"
    "  mov x29, xzr\n"
    "  mov x30, xzr\n"
    "  mov x0, x11\n"
    "  blr x10\n"
    "  mov x8, #93\n" /* SYS_exit */
    "  svc #0\n"
    "  brk #0\n"
    "  .cfi_endproc\n"
    ".size e2_clone3_raw, .-e2_clone3_raw\n"
    ".popsection\n");
#else
#error "no clone3 trampoline for this architecture"
#endif

long e2_clone3_raw(struct e2_clone_args *args, size_t size, int (*fn)(void *),
                   void *arg);

#endif
