/* The next definition of a symbol after this library (what dlsym(RTLD_NEXT) gives) for glibc
 * before 2.34, where dlsym lives in libdl.so.2: the library does not load libdl (one object less
 * to map in every process), so when no dlsym is there it looks the symbol up itself in the
 * objects loaded after it (dl_iterate_phdr, in load order), by their GNU hash tables, taking the
 * default version of a versioned symbol, as dlsym does. And the lookup every wrapper makes through
 * REAL(name): once per symbol, cached, ENOSYS where libc has no such function. */
#define _GNU_SOURCE
#include "compat.h" /* dlsym: weak, and the version every glibc has */

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "preload.h"

#ifdef __GLIBC__
struct lookup {
    const char *name;
    uint32_t hash;
    uintptr_t self; /* an address inside this library */
    bool after;     /* this library has been passed */
    void *found;
};

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* d_ptr values: glibc relocates them in place, the vDSO's are not. */
static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
    return p < info->dlpi_addr ? info->dlpi_addr + p : p;
}

static bool holds(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type == PT_LOAD && addr >= start && addr < start + ph->p_memsz)
            return true;
    }
    return false;
}

static void *find_in(const struct dl_phdr_info *info, const ElfW(Dyn) *dyn, const struct lookup *l)
{
    const uint32_t *gh = NULL;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Half) *versym = NULL;
    const ElfW(Addr) *bloom;
    const uint32_t *buckets, *chain;
    uint32_t nbuckets, symoffset, bloom_size, shift, idx;
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word, mask;

    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_GNU_HASH)
            gh = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB)
            strtab = (const char *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_VERSYM)
            versym = (const ElfW(Half) *)dyn_ptr(info, dyn->d_un.d_ptr);
    }
    if (!gh || !symtab || !strtab)
        return NULL;
    nbuckets = gh[0];
    symoffset = gh[1];
    bloom_size = gh[2];
    shift = gh[3];
    if (nbuckets == 0 || bloom_size == 0)
        return NULL;
    bloom = (const ElfW(Addr) *)(gh + 4);
    buckets = (const uint32_t *)(bloom + bloom_size);
    chain = buckets + nbuckets;
    word = bloom[(l->hash / bits) % bloom_size];
    mask = ((ElfW(Addr))1 << (l->hash % bits)) | ((ElfW(Addr))1 << ((l->hash >> shift) % bits));
    if ((word & mask) != mask)
        return NULL;
    idx = buckets[l->hash % nbuckets];
    if (idx < symoffset)
        return NULL;
    for (;; idx++) {
        uint32_t h = chain[idx - symoffset];
        const ElfW(Sym) *sym = &symtab[idx];
        unsigned type = ELF64_ST_TYPE(sym->st_info);

        if ((h | 1) == (l->hash | 1) && sym->st_shndx != SHN_UNDEF && sym->st_value != 0 &&
            (type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_OBJECT || type == STT_NOTYPE) &&
            (!versym || !(versym[idx] & 0x8000)) && strcmp(strtab + sym->st_name, l->name) == 0) {
            void *addr = (void *)(info->dlpi_addr + sym->st_value);

            if (type == STT_GNU_IFUNC)
                addr = ((void *(*)(void))addr)();
            return addr;
        }
        if (h & 1)
            return NULL;
    }
}

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
    struct lookup *l = data;
    const ElfW(Dyn) *dyn = NULL;

    (void)size;
    if (!l->after) {
        l->after = holds(info, l->self);
        return 0;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
    if (dyn)
        l->found = find_in(info, dyn, l);
    return l->found != NULL;
}

#endif

void *hp_next_symbol(const char *name)
{
#ifdef __GLIBC__
    if (!dlsym) {
        struct lookup l = {.name = name, .hash = gnu_hash(name), .self = (uintptr_t)hp_next_symbol};

        dl_iterate_phdr(visit, &l);
        return l.found;
    }
#endif
    return dlsym(RTLD_NEXT, name);
}

/* What a wrapper calls when libc lacks the function it wraps: fails with ENOSYS (-1) instead of
 * jumping to NULL. Every function this library wraps exists in glibc >= 2.31 and musl >= 1.2. */
static long no_such_function(void)
{
    errno = ENOSYS;
    return -1;
}

void *hp_next(const char *name, void **slot)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

    if (!fn) {
        fn = hp_next_symbol(name);
        if (!fn) {
            hp_say("hpcbox-preload: libc has no %s; the call fails with ENOSYS", name);
            fn = (void *)no_such_function;
        }
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}
