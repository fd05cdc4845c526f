/*
 * culib.c — opens cuBLASLt and cuDNN on first use (see culib.h).  Host C11.
 *
 * Each library is tried by soname first (the loader's search path, which
 * is where the GPU machines have cuDNN), then in the directory it was found
 * in when kiln was configured (KILN_CUBLASLT_DIR / KILN_CUDNN_DIR), which
 * is where the CUDA toolkit keeps cuBLASLt.
 */
#define KC_CULIB_IMPL

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* cublasLt.h declares cublasLtLoggerForceDisable() without a prototype */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <cublasLt.h>
#pragma GCC diagnostic pop
#include <cudnn.h>

#include "cuda/culib.h"

#define KC_STR_(x) #x
#define KC_STR(x) KC_STR_(x)
#define KC_CUBLASLT_SONAME "libcublasLt.so." KC_STR(CUBLAS_VER_MAJOR)
#define KC_CUDNN_SONAME "libcudnn.so." KC_STR(CUDNN_MAJOR)

struct kc_culib kc_culib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_why[512];

/* dlopen by soname, then in dir: the handle, or NULL with the reason. */
static void *open_lib(const char *soname, const char *dir)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h)
        return h;
    char first[200];
    const char *e = dlerror();
    snprintf(first, sizeof first, "%s", e ? e : soname);
    if (dir && *dir) {
        char path[400];
        snprintf(path, sizeof path, "%.370s/%s", dir, soname);
        if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
            return h;
        e = dlerror();
        snprintf(load_why, sizeof load_why, "cannot load %s (%.200s; %.200s)", soname, first, e ? e : path);
    } else {
        snprintf(load_why, sizeof load_why, "cannot load %s (%.200s)", soname, first);
    }
    return NULL;
}

/* Resolves every listed symbol of h into the table; 0, or -1 naming the first missing. */
#define KC_CULIB_SYM(f)                                                                                                \
    if (!(kc_culib.f = (__typeof__(&f))dlsym(h, #f))) {                                                                \
        snprintf(load_why, sizeof load_why, "%s has no %s (a different major version?)", lib, #f);                   \
        return -1;                                                                                                     \
    }

static int resolve_lt(void *h, const char *lib)
{
    KC_CUBLASLT_FNS(KC_CULIB_SYM)
    return 0;
}

static int resolve_dnn(void *h, const char *lib)
{
    KC_CUDNN_FNS(KC_CULIB_SYM)
    return 0;
}

#ifndef KILN_CUBLASLT_DIR
#define KILN_CUBLASLT_DIR ""
#endif
#ifndef KILN_CUDNN_DIR
#define KILN_CUDNN_DIR ""
#endif

static void load(void)
{
    void *lt = open_lib(KC_CUBLASLT_SONAME, KILN_CUBLASLT_DIR);
    void *dnn = lt && !resolve_lt(lt, KC_CUBLASLT_SONAME) ? open_lib(KC_CUDNN_SONAME, KILN_CUDNN_DIR) : NULL;
    if (dnn && !resolve_dnn(dnn, KC_CUDNN_SONAME)) {
        /* Both stay open for the life of the process, as linked libraries would. */
        load_rc = 0;
        return;
    }
    /* a failure: nothing stays mapped, no pointer into a closed library */
    memset(&kc_culib, 0, sizeof kc_culib);
    if (dnn)
        dlclose(dnn);
    if (lt)
        dlclose(lt);
}

int kc_culib_load(char *why, size_t why_size)
{
    pthread_once(&load_once, load);
    if (load_rc && why && why_size)
        snprintf(why, why_size, "%s", load_why);
    return load_rc;
}
