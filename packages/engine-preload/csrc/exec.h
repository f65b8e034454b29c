/* Internal interface of exec (exec.c, spawn.c) and its planning (plan.c, loader.c): what an exec
 * of a guest path runs instead, worked out once into a plan, then handed to execve, posix_spawn or
 * the listing of ld.so. Errors: 0 or -errno (preload.h). */
#ifndef HPCBOX_PRELOAD_EXEC_H
#define HPCBOX_PRELOAD_EXEC_H

#include <limits.h>
#include <stdbool.h>

#include "creds.h"
#include "preload.h"

#define MAX_SCRIPTS 4   /* nested #! interpreters, as Linux's BINPRM_MAX_RECURSION */
#define MAX_PREFIX (3 * MAX_SCRIPTS + 1)

/* Room in a plan's text for 8 paths: at most 7 are kept between two resets (hp_plan_loader's
 * case), and each room asked for is PATH_MAX bytes. */
#define PLAN_TEXT (8 * PATH_MAX)

struct plan {
    /* the small fields first, then the paths packed, then the buffers for "#!": a forked child
     * writes this plan before exec, and each page it writes is a page fault (~2 us) */
    const char *pre[MAX_PREFIX];  /* argv built by "#!" levels; then the caller's from `skip` */
    int npre;
    int skip;
    bool musl;
    bool known_loader;         /* p->host came from the engine's list, not from a walk now */
    bool mask_hwcaps;          /* ... with --glibc-hwcaps-mask "" (the engine found none there) */
    bool mask_legacy;          /* ... with LD_HWCAP_MASK=0 (nor the older subdirectories) */
    int hwcap_at;              /* where p->envp has LD_HWCAP_MASK=0 and its mark, else -1 */
    bool trace;                /* ld.so lists libraries (ldd): output mapped back, no LD_PRELOAD */
    long task;                 /* the task planning it: its allocations' owner (execmem.c) */
    char **argv, **envp;       /* hp_exec_alloc'ed; strings point into this plan, the caller's or keep */
    char *libpath, *env_exe, *env_argv0, *env_preload, *env_comm;
    char *tracer;              /* a static program: a copy of the tracer's command line prefix */
    char comm[16];             /* the kernel's process name for an exec of the given path */
    char ids[2][16];
    /* in text, set with hp_plan_room and hp_plan_keep or with hp_plan_set */
    char *host;                /* what execve gets: the container's loader, on the host */
    char *prog;                /* the program, on the host */
    char *exe;                 /* the program, canonical in the guest (for /proc/self/exe) */
    char *interp;              /* its PT_INTERP (guest) */
    size_t used;               /* bytes of text taken */
    char text[PLAN_TEXT];
    char env_creds[sizeof(HP_ENV_CREDS) + 11 * (6 + CREDS_MAX_GROUPS)];
    char script[MAX_SCRIPTS][2][256]; /* "#!" interpreter and argument of each level */
    char paths[MAX_SCRIPTS][PATH_MAX]; /* the guest path each level executed */
};

/* plan.c: work out what to execute for the guest `path` into p (0 or -errno; hp_plan_free after,
 * also on failure); its parts shared with loader.c. */
int hp_plan_exec(struct plan *p, const char *path, char *const argv[], char *const envp[]);
void hp_plan_free(struct plan *p);
/* The plan's paths, packed in p->text (short ones share a page: each page a forked child writes
 * is a page fault). hp_plan_room: PATH_MAX bytes to write one in (NULL when the text has no such
 * room left, which PLAN_TEXT rules out); hp_plan_keep makes what was written there *field;
 * hp_plan_set makes a copy of s (cut to PATH_MAX - 1 bytes, as snprintf cut it) *field: 0 or
 * -ENOMEM. hp_plan_reset empties the text (all four ""), for each level of "#!". */
void hp_plan_reset(struct plan *p);
char *hp_plan_room(struct plan *p);
void hp_plan_keep(struct plan *p, char **field);
int hp_plan_set(struct plan *p, char **field, const char *s);
int hp_count(char *const v[]);
/* execmem.c: memory an exec plan needs until the execve system call, freed by this thread's next
 * exec where a vfork child exec'd with it (its parent would keep it otherwise). hp_exec_task: the
 * caller's task id, taken once per exec and given to each allocation; hp_exec_reclaim(task) at the
 * start of each exec; hp_exec_free on the way back from a failed one (NULL: nothing). */
long hp_exec_task(void);
void *hp_exec_alloc(size_t size, long task);
void hp_exec_free(void *data);
void hp_exec_reclaim(long task);
const char *hp_env_value(char *const envp[], const char *name);
int hp_libpath_for(struct plan *p, const char *user);
int hp_build_env(struct plan *p, char *const envp[], const char *argv0);
/* p->argv for the loader with room for `more` further entries, its leading options written
 * (loader, --library-path, --argv0 for musl or [--glibc-hwcaps-mask ""] --inhibit-cache for
 * glibc): their count, or -ENOMEM. hp_unmask_hwcaps takes the masks out of a written p->argv and
 * p->envp. */
int hp_loader_argv(struct plan *p, int more, const char *argv0);
void hp_unmask_hwcaps(struct plan *p);
bool hp_drop_from_env(const char *entry);

/* loader.c: the container's loader run directly (ldd, `ld.so PROG`), and ld.so's listing of
 * libraries run as a child with its output mapped back (returns only on failure, -errno). */
bool hp_is_loader(const struct plan *p);
int hp_plan_loader(struct plan *p, char *const argv[], char *const envp[]);
int hp_exec_traced(struct plan *p);

#endif
