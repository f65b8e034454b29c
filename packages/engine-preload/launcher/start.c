/* The launcher's entry point, in place of the C library's crt1.o (linked with -nostartfiles).
 *
 * The launcher must stay dynamically linked (the LD_PRELOAD library is loaded into it: its chdir
 * and execvp go through the library), and every glibc since 2.34 gives programs a crt1.o that
 * calls __libc_start_main@GLIBC_2.34, so a launcher built there would not start on RHEL 8 (2.28),
 * Debian 11 (2.31) or any manylinux2014 host. This _start calls the version every glibc of the
 * architecture has (2.34 and later keep it for old programs), with no init/fini functions: the
 * launcher has no constructors, and newer glibc runs the program's init arrays itself then.
 * Only glibc builds for x86_64 and aarch64 use this file (ffi_build.py); others take crt1.o. */
#include <stdlib.h> /* defines __GLIBC__ */

#if !defined(__GLIBC__) || !(defined(__x86_64__) || defined(__aarch64__))
#error "launcher/start.c is for glibc on x86_64 and aarch64 only: link with the C library's crt1.o"
#else

int main(int argc, char **argv, char **envp); /* launcher.c's, which ignores envp */
int __libc_start_main(int (*main_fn)(int, char **, char **), int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end);

#if defined(__x86_64__)
__asm__(".symver __libc_start_main,__libc_start_main@GLIBC_2.2.5");
#else
__asm__(".symver __libc_start_main,__libc_start_main@GLIBC_2.17");
#endif

/* sp points at argc, then argv[], NULL, envp[]: the kernel's initial stack. */
__attribute__((used, noreturn)) void hp_start(long *sp, void (*rtld_fini)(void))
{
    __libc_start_main(main, (int)sp[0], (char **)(sp + 1), 0, 0,
                      rtld_fini, sp);
    __builtin_trap();
}

#if defined(__x86_64__)
/* %rdx: the dynamic loader's fini function; align the stack as the ABI wants before the call. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  and $-16, %rsp\n"
        "  call hp_start\n"
        "  hlt\n");
#else
/* x0: the dynamic loader's fini function; sp is 16-byte aligned at entry. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x1, x0\n"
        "  mov x0, sp\n"
        "  bl hp_start\n"
        "  brk #0\n");
#endif

#endif
